#!/usr/bin/env python3
"""One model's side-by-side markdown of tq bench model against llama-bench (f16 and q4_0 caches).

Used by scripts/bench_llama_cpp.sh; tests in tests/scripts/test_side_by_side.py.

Rows: depth x phase (prefill, decode) x tq codec; columns: tq tok/s, llama.cpp tok/s with an
f16 cache and with a q4_0 cache at the same depth, and tq / llama.cpp for each. Then tq's
resident memory against the budget GGUF size + cache bytes + 150 MB, and the issue-12 goals.
"""
import argparse
import json
import os
import sys

MIB = 1 << 20
RSS_SLACK = 150 * 1000 * 1000  # the "+ 150 MB" of the memory goal
THREE_BIT = ("turbo3", "tq3", "rht3")  # the codecs a "3-bit cache" goal counts


def llama_rows(doc):
    """{(depth, phase): tok/s} from llama-bench -o json (a list of tests)."""
    out = {}
    for t in doc:
        phase = "prefill" if t["n_prompt"] > 0 else "decode"
        out[(int(t["n_depth"]), phase)] = float(t["avg_ts"])
    return out


def tq_rows(doc):
    """{(codec, depth, phase): tok/s} and {(codec, depth): row} from tq bench model --json."""
    speed, rows = {}, {}
    for r in doc["rows"]:
        key = (r["codec"], int(r["depth"]))
        speed[key + ("prefill",)] = float(r["prefill_tok_s"])
        speed[key + ("decode",)] = float(r["decode_tok_s"])
        rows[key] = r
    return speed, rows


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def tok_s(x):
    return f"{x:.1f}" if x is not None else "-"


def goals(tq, f16, q4, depths):
    """Lines for the issue-12 speed goals: (text, met) for the ones these depths allow."""
    out = []
    if (0, "decode") in f16 and ("f16", 0, "decode") in tq:
        r = tq[("f16", 0, "decode")] / f16[(0, "decode")]
        out.append((f"decode at depth 0, f16 cache: {r:.2f}x llama.cpp (goal >= 1.0x)", r >= 1.0))
    if (0, "prefill") in f16 and ("f16", 0, "prefill") in tq:
        r = tq[("f16", 0, "prefill")] / f16[(0, "prefill")]
        out.append((f"prefill at depth 0, f16 cache: {r:.2f}x llama.cpp (goal >= 0.8x)", r >= 0.8))
    deep = [d for d in depths if d >= 16384]
    for d in deep:
        best = max(((tq[(c, d, "decode")], c) for c in THREE_BIT if (c, d, "decode") in tq), default=None)
        if best is None:
            continue
        v, c = best
        if (d, "decode") in f16:
            r = v / f16[(d, "decode")]
            out.append((f"decode at depth {d}, 3-bit cache ({c}): {r:.2f}x llama.cpp's f16 cache (goal >= 4x)", r >= 4))
        if (d, "decode") in q4:
            r = v / q4[(d, "decode")]
            out.append((f"decode at depth {d}, 3-bit cache ({c}): {r:.2f}x llama.cpp's q4_0 cache (goal >= 2.5x)", r >= 2.5))
    return out


def render(model, gguf_bytes, tq_doc, f16_doc, q4_doc, cmds, load):
    tq, rows = tq_rows(tq_doc)
    f16, q4 = llama_rows(f16_doc), llama_rows(q4_doc)
    codecs = list(dict.fromkeys(r["codec"] for r in tq_doc["rows"]))
    depths = sorted({int(r["depth"]) for r in tq_doc["rows"]})
    meta = f16_doc[0] if f16_doc else {}
    lines = [f"### {model}: tq bench model against llama-bench", ""]
    for c in cmds:
        lines.append(f"- `{c}`")
    if meta:
        lines.append(f"- llama-bench: {meta.get('cpu_info', '?')}, model {meta.get('model_type', '?')}, "
                     f"{meta.get('n_threads', '?')} threads, flash attention on")
    lines.append(f"- load average (1, 5, 15 min) before -> after: {load}")
    lines += ["", "| depth | phase | tq codec | tq tok/s | llama.cpp f16 tok/s | tq / llama.cpp f16 "
              "| llama.cpp q4_0 tok/s | tq / llama.cpp q4_0 |", "|---:|---|---|---:|---:|---:|---:|---:|"]
    for d in depths:
        for phase in ("prefill", "decode"):
            a, b = f16.get((d, phase)), q4.get((d, phase))
            for c in codecs:
                v = tq.get((c, d, phase))
                lines.append(f"| {d} | {phase} | {c} | {tok_s(v)} | {tok_s(a)} | {ratio(v, a)} | {tok_s(b)} | {ratio(v, b)} |")
    lines += ["", "tq resident memory against GGUF size + cache bytes + 150 MB "
              f"(GGUF {gguf_bytes / MIB:.1f} MiB):", "",
              "| tq codec | depth | cache MiB | RSS MiB | budget MiB | within |", "|---|---:|---:|---:|---:|---|"]
    for c in codecs:
        for d in depths:
            r = rows.get((c, d))
            if r is None:
                continue
            budget = gguf_bytes + r["cache_bytes"] + RSS_SLACK
            lines.append(f"| {c} | {d} | {r['cache_bytes'] / MIB:.1f} | {r['rss_bytes'] / MIB:.1f} | "
                         f"{budget / MIB:.1f} | {'yes' if r['rss_bytes'] <= budget else 'no'} |")
    g = goals(tq, f16, q4, depths)
    if g:
        lines += ["", "Goals (issue 12):", ""]
        lines += [f"- {'met' if ok else 'missed'}: {text}" for text, ok in g]
    return "\n".join(lines) + "\n"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__)
    for name in ("model", "gguf", "tq", "tq-cmd", "llama-f16", "llama-f16-cmd", "llama-q4", "llama-q4-cmd", "load"):
        p.add_argument("--" + name, required=True)
    a = p.parse_args(argv)

    def load(path):
        with open(path) as f:
            return json.load(f)

    sys.stdout.write(render(a.model, os.path.getsize(a.gguf), load(a.tq), load(a.llama_f16), load(a.llama_q4),
                            [a.llama_f16_cmd, a.llama_q4_cmd, a.tq_cmd], a.load))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
