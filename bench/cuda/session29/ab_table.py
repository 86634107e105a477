#!/usr/bin/env python3
"""Decode A/B table from bench_cuda.py JSON runs of one library in one device call:
dec_<mode>_<round>.json for mode split_reduce (three launches) and auto (the merge in the
split kernel where it applies). Prints, per (batch, context, codec), each round's time
and its ratio to that run's own SDPA, then the mean over rounds of reduce time / merge time
(> 1: the merge is faster).
  python3 bench/cuda/session29/ab_table.py DIR
"""
import glob
import json
import os
import re
import sys


def load(path):
    d = json.load(open(path))
    rows = {(r["batch"], r["ctx"], r["codec"]): r["ms"] * 1e3 for r in d["decode"]}
    return d["info"], rows


def main():
    base = sys.argv[1]
    runs = {}
    for p in sorted(glob.glob(os.path.join(base, "dec_*_*.json"))):
        m = re.match(r"dec_(split_reduce|auto)_(\d+)\.json", os.path.basename(p))
        if m:
            runs[(m.group(1), int(m.group(2)))] = load(p)
    rounds = sorted({r for _, r in runs})
    info = next(iter(runs.values()))[0]
    print(f"Device: {info.get('device', '?')}. Rounds: {rounds}. Times in us (ratio to the same run's SDPA f16).")
    print()
    head = "| batch | context | codec | " + " | ".join(
        f"{m} r{r}" for r in rounds for m in ("reduce", "merge")) + " | reduce time / merge time (mean) |"
    print(head)
    print("|" + "---:|" * 2 + "---|" + "---:|" * (2 * len(rounds) + 1))
    keys = sorted({k for _, rows in runs.values() for k in rows if k[2] != "torch SDPA f16"},
                  key=lambda k: (k[0], k[2], k[1]))
    for b, ctx, codec in keys:
        cells, ratios = [], []
        for r in rounds:
            pair = []
            for mode in ("split_reduce", "auto"):
                if (mode, r) not in runs or (b, ctx, codec) not in runs[(mode, r)][1]:
                    cells.append("")
                    continue
                rows = runs[(mode, r)][1]
                t, sdpa = rows[(b, ctx, codec)], rows[(b, ctx, "torch SDPA f16")]
                cells.append(f"{t:.1f} ({sdpa / t:.2f}x)")
                pair.append(t)
            if len(pair) == 2:
                ratios.append(pair[0] / pair[1])
        mean = f"{sum(ratios) / len(ratios):.3f}" if ratios else ""
        print(f"| {b} | {ctx} | {codec} | " + " | ".join(cells) + f" | {mean} |")


if __name__ == "__main__":
    main()
