#!/usr/bin/env python3
"""Old-vs-new quantize table from scripts/bench_cuda.py --only quantize JSON runs made
alternately in one device call (q_old_1, q_new_1, q_old_2, q_new_2, ...).

  python3 bench/cuda/session24/quantize_table.py DIR [--sizes 65536,262144]

Prints a markdown table: per codec and size, each library's time (median over its rounds),
its share of the copy bandwidth measured in the same run, and new/old speed-up."""
import argparse
import glob
import json
import os
import statistics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--sizes", default="")
    args = ap.parse_args()
    runs = {"old": [], "new": []}
    for v in runs:
        for f in sorted(glob.glob(os.path.join(args.dir, f"q_{v}_*.json"))):
            runs[v].append(json.load(open(f)))
    if not runs["old"] or not runs["new"]:
        raise SystemExit(f"{args.dir}: needs q_old_*.json and q_new_*.json")
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    info = runs["new"][0]["info"]
    bws = [r["copy_bw"] for v in runs for r in runs[v]]
    print(f"Device: {info['device']}; {len(runs['old'])} rounds per library, alternating; copy bandwidth "
          f"{min(bws) / 1e12:.2f}-{max(bws) / 1e12:.2f} TB/s over the runs.\n")
    print("| vectors | codec | old (us) | old % of copy | new (us) | new % of copy | new / old speed |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    rows = {}
    for v in runs:
        for r in runs[v]:
            for q in r["quantize"]:
                if q["what"].startswith("torch") or (sizes and q["vectors"] not in sizes):
                    continue
                rows.setdefault((q["vectors"], q["what"]), {"old": [], "new": []})[v].append(q)
    for (n, what), by in sorted(rows.items()):
        if not by["old"] or not by["new"]:
            continue
        t = {v: statistics.median(q["ms"] for q in by[v]) * 1e3 for v in by}
        f = {v: statistics.median(q["bw_fraction"] for q in by[v]) * 100 for v in by}
        print(f"| {n} | {what} | {t['old']:.1f} | {f['old']:.1f}% | {t['new']:.1f} | {f['new']:.1f}% | "
              f"{t['old'] / t['new']:.2f}x |")


if __name__ == "__main__":
    main()
