#!/usr/bin/env python3
"""Grades `tq eval --json` rows against the quality goals and prints them as markdown tables
(scripts/bench_eval.sh appends them below each model's table). The eval itself only
measures; the goals live here.

Issue 6, for codecs whose K and V share a 3- or 4-bit code width (the row's "code_bits",
from the codec table): 3-bit KL <= 0.008 and |dPPL| <= 0.5%; 4-bit KL <= 0.003 and
|dPPL| <= 0.2%; passkey equal to f16 (the first row); beat q4_0h (lower KL at fewer bits).

Issue 11, one line per goal: the codecs within its bound on bits per value (everything
counted: the row's "bits_per_value") and which of them meet it:
  <= 3.5 bits   KL below q4_0h's
  <= 4.25 bits  KL <= 0.5 x q4_0h's and |dPPL| <= 1%
  <= 3.0 bits   KL <= 0.05 (Gemma 3: 0.04)
  passkey equal to f16 for every calibrated preset (tq2.5 ... tq4.25) the run tried it on.
The goals against q4_0h need a q4_0h row in the same run (said when there is none).

usage: eval_goals.py RESULT.json
"""
import json
import re
import sys

GOALS = {3: (0.008, 0.5), 4: (0.003, 0.2)}  # code bits -> (KL, |dPPL| in %)
KL_AT_3_BITS = {"gemma3": 0.04}  # by the model's architecture; 0.05 otherwise
BITS_EPS = 1e-6  # bits_per_value is a float: 2.9989583 is "3 bits"


def ok(good):
    return "ok" if good else "miss"


def q4_0h_row(rows):
    return next((r for r in rows if r["label"] == "q4_0h"), None)


def verdict(row, rows):
    kl_goal, ppl_goal = GOALS[row["code_bits"]]
    cells = [f"KL {ok(row['kl'] <= kl_goal)}", f"ΔPPL {ok(abs(row['dppl_pct']) <= ppl_goal)}"]
    if row["passkey"]["trials"]:
        cells.append(f"passkey {ok(row['passkey']['found'] >= rows[0]['passkey']['found'])}")
    q4 = q4_0h_row(rows)
    if q4:
        beats = row["bits_per_value"] < q4["bits_per_value"] and row["kl"] < q4["kl"]
        cells.append(("beats" if beats else "loses to") + " q4_0h")
    return ", ".join(cells)


def is_preset(row):
    return all(re.fullmatch(r"tq\d+(\.\d+)?", row[side]) for side in ("k", "v"))


def issue11_table(rows, arch):
    """Each goal of issue 11 as one row: the codecs within its bit bound and which meet it."""
    q4 = q4_0h_row(rows)
    kl3 = KL_AT_3_BITS.get(arch, 0.05)
    goals = [(f"≤ 3.0 bits: KL ≤ {kl3:g} ({arch or 'this model'})", 3.0, lambda r: r["kl"] <= kl3)]
    if q4:
        half = 0.5 * q4["kl"]
        goals.insert(0, (f"≤ 3.5 bits: KL below q4_0h's ({q4['kl']:.4f})", 3.5, lambda r: r["kl"] < q4["kl"]))
        goals.insert(1, (f"≤ 4.25 bits: KL ≤ 0.5 × q4_0h's ({half:.4f}) and \\|ΔPPL\\| ≤ 1%", 4.25,
                         lambda r: r["kl"] <= half and abs(r["dppl_pct"]) <= 1.0))
    lines = ["| goal | codecs within the bits (KL) | met by |", "|---|---|---|"]
    for text, bound, meets in goals:
        within = [r for r in rows[1:] if r["label"] != "q4_0h" and r["bits_per_value"] <= bound + BITS_EPS]
        met = [r["label"] for r in within if meets(r)]
        listed = ", ".join(f"{r['label']} ({r['kl']:.4f})" for r in within) or "none in this run"
        lines.append(f"| {text} | {listed} | {', '.join(met) or 'miss'} |")
    presets = [r for r in rows if is_preset(r) and r["passkey"]["trials"]]
    if presets:
        want = rows[0]["passkey"]["found"]
        missed = [r["label"] for r in presets if r["passkey"]["found"] < want]
        listed = ", ".join(f"{r['label']} {r['passkey']['found']}/{len(r['passkey']['trials'])}" for r in presets)
        lines.append(f"| passkey equal to f16 ({want}/{len(rows[0]['passkey']['trials'])}) for every preset | {listed} | "
                     f"{'miss: ' + ', '.join(missed) if missed else 'every preset'} |")
    if not q4:
        lines.append("")
        lines.append("No q4_0h row in this run: the goals against q4_0h are not graded.")
    return "\n".join(lines)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    result = json.load(open(sys.argv[1]))
    rows = result["rows"]
    if any("code_bits" not in r for r in rows):  # issue 11 grades by bits per value only
        print(f"{sys.argv[1]}: rows without code_bits (written by an older tq eval): no issue-6 table",
              file=sys.stderr)
    graded = [r for r in rows if r.get("code_bits") in GOALS]
    if graded:
        print("Goals (issue 6): 3-bit K+V KL ≤ 0.008 and |ΔPPL| ≤ 0.5%; 4-bit KL ≤ 0.003 and |ΔPPL| ≤ 0.2%;"
              " passkey equal to f16; beat q4_0h (lower KL at fewer bits). Graded by `scripts/eval_goals.py`.")
        print()
        print("| codec (K/V) | code bits | goals |")
        print("|---|---:|---|")
        for r in graded:
            print(f"| {r['label']} | {r['code_bits']} | {verdict(r, rows)} |")
    arch = result.get("model", {}).get("arch", "")
    if graded:
        print()
    print("Goals (issue 11), by bits per value with everything counted. Graded by `scripts/eval_goals.py`.")
    print()
    print(issue11_table(rows, arch))


if __name__ == "__main__":
    main()
