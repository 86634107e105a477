#!/usr/bin/env python3
"""A/B table from bench_cuda.py decode JSON runs of one device call:
dec_<label>_<round>.json, one label per variant (an env setting of one library, or one of
several libraries). Prints, per (batch, context, codec), each variant's mean time over its
rounds with the ratio to the same runs' torch SDPA f16, and each variant's mean time over
the first label's (> 1: slower than the first).
  python3 bench/cuda/ab_table.py DIR [LABEL ...]   (labels in column order; default: sorted)
"""
import glob
import json
import os
import re
import sys
from statistics import mean

SDPA = "torch SDPA f16"


def load(path):
    d = json.load(open(path))
    return d["info"], {(r["batch"], r["ctx"], r["codec"]): r["ms"] * 1e3 for r in d["decode"]}


def main():
    base, order = sys.argv[1], sys.argv[2:]
    runs = {}
    for p in sorted(glob.glob(os.path.join(base, "dec_*_*.json"))):
        m = re.match(r"dec_(.+)_(\d+)\.json$", os.path.basename(p))
        if m:
            runs.setdefault(m.group(1), []).append(load(p))
    labels = order or sorted(runs)
    info = runs[labels[0]][0][0]
    rounds = ", ".join(f"{l} {len(runs[l])}" for l in labels)
    print(f"Device: {info.get('device', '?')}. Rounds: {rounds}. "
          "Mean us (mean ratio to the same run's SDPA f16).")
    print()
    print("| batch | context | codec | " + " | ".join(labels) + " | " +
          " | ".join(f"{l} / {labels[0]}" for l in labels[1:]) + " |")
    print("|---:|---:|---|" + "---:|" * (2 * len(labels) - 1))
    keys = sorted({k for l in labels for _, rows in runs[l] for k in rows if k[2] != SDPA},
                  key=lambda k: (k[0], k[2], k[1]))
    for b, ctx, codec in keys:
        means, cells = [], []
        for l in labels:
            ts = [(rows[(b, ctx, codec)], rows[(b, ctx, SDPA)])
                  for _, rows in runs[l] if (b, ctx, codec) in rows]
            if not ts:
                means.append(None)
                cells.append("")
                continue
            t = mean(x for x, _ in ts)
            means.append(t)
            cells.append(f"{t:.1f} ({mean(s / x for x, s in ts):.2f}x)")
        rel = [f"{m / means[0]:.3f}" if m and means[0] else "" for m in means[1:]]
        print(f"| {b} | {ctx} | {codec} | " + " | ".join(cells) + " | " + " | ".join(rel) + " |")


if __name__ == "__main__":
    main()
