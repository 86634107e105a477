#!/usr/bin/env python3
"""Kernel time per decode step from Nsight Compute's per-kernel summary of a
`tq bench model --device cuda` run (docs/CUDA.md, "Profiling a decode step"):

  TQ_CUDA_PROFILE_DECODE=1 ncu --profile-from-start off --launch-count 1100 \
      --metrics gpu__time_duration.sum --cache-control none --clock-control none \
      --print-summary per-kernel --csv tq bench model ... --decode 3 > run.csv
  python3 bench/cuda/ncu_decode_step.py run.csv [more.csv ...]

Steps are counted by the embedding kernel (one launch per step); the profile may end
inside a step, so the last step is partial when --launch-count cuts it."""
import csv
import re
import sys


def summarize(path, top):
    rows = []
    lines = [line for line in open(path) if line.startswith('"')]
    for r in csv.DictReader(lines):
        if r["Metric Name"] != "gpu__time_duration.sum":
            continue
        n = int(r["Invocations"])
        avg_us = float(r["Average"].replace(",", "")) / 1e3
        name = re.sub(r"\(.*", "", r["Kernel Name"]).replace("void ", "")
        rows.append((n * avg_us, n, avg_us, name[:72], r["Grid Size"]))
    if not rows:
        sys.exit(f"{path}: no gpu__time_duration.sum rows (did ncu run with --csv --print-summary per-kernel?)")
    steps = max((n for _, n, _, name, _ in rows if "embed" in name), default=1)
    total = sum(r[0] for r in rows)
    print(f"## {path}: {steps} steps, {total / steps:.1f} us of kernel time and "
          f"{sum(r[1] for r in rows) / steps:.0f} launches per step\n")
    print("| us per step | launches per step | us per launch | kernel | grid |")
    print("|---:|---:|---:|---|---|")
    for t, n, a, name, grid in sorted(rows, reverse=True)[:top]:
        print(f"| {t / steps:.1f} | {n / steps:.1f} | {a:.2f} | `{name}` | {grid} |")
    print()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        summarize(p, 14)
