#!/usr/bin/env python3
"""A/B table of bench_cuda.py --only quantize runs of one device call (q_<label>_<round>.json):
per (vectors, codec) each label's mean time over its rounds and its mean fraction of the
same run's copy bandwidth, then each label's mean time over the first label's (< 1: faster),
and whether every row's records passed the exact-kernel check.
  python3 bench/cuda/quantize_ab.py DIR LABEL [LABEL ...]"""
import glob
import json
import os
import sys
from statistics import mean


def main():
    base, labels = sys.argv[1], sys.argv[2:]
    runs = {l: [json.load(open(p)) for p in sorted(glob.glob(os.path.join(base, f"q_{l}_*.json")))] for l in labels}
    if not all(runs.values()):
        print("quantize_ab: no runs for " + ", ".join(l for l in labels if not runs[l]))
        return 1
    info = runs[labels[0]][0]["info"]
    print(f"Device: {info['device']}. Rounds: " + ", ".join(f"{l} {len(runs[l])}" for l in labels) +
          ". Mean us (mean fraction of the same run's copy bandwidth).\n")
    print("| vectors | codec | " + " | ".join(labels) + " | " + " | ".join(f"{l} / {labels[0]}" for l in labels[1:]) +
          " | records |")
    print("|---:|---|" + "---:|" * (2 * len(labels) - 1) + "---|")
    keys = sorted({(r["vectors"], r["what"]) for r in runs[labels[0]][0]["quantize"] if "bytes" in r})
    for n, what in keys:
        means, cells, ok = [], [], True
        for l in labels:
            rows = [r for run in runs[l] for r in run["quantize"] if r["vectors"] == n and r["what"] == what]
            ok = ok and all(r.get("ok", True) for r in rows)
            t = mean(r["ms"] for r in rows) * 1e3
            means.append(t)
            cells.append(f"{t:.1f} ({100 * mean(r['bw_fraction'] for r in rows):.1f}%)")
        rel = [f"{m / means[0]:.3f}" for m in means[1:]]
        print(f"| {n} | {what} | " + " | ".join(cells) + " | " + " | ".join(rel) + f" | {'ok' if ok else 'FAILED'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
