#!/usr/bin/env python3
"""Each codec's decode tok/s against the f16 cache's of the same `tq bench model --markdown`
file, one row per (file, codec): the end-to-end goal's ratio, without an old/new pair.

  python3 bench/cuda/e2e_ratios.py bench/cuda/session35/call2/e2e_*.md
"""
import os
import re
import sys


def main():
    print("| file | GPU | depth | codec | decode tok/s | f16 decode tok/s | codec / f16 |")
    print("|---|---|---:|---|---:|---:|---:|")
    for path in sys.argv[1:]:
        gpu, rows = "", {}
        for line in open(path):
            m = re.search(r"GPU: ([^(]+)\(", line)
            if m:
                gpu = m.group(1).strip()
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 8 and re.match(r"^[0-9.]+$", cells[3]) and cells[0] != "codec":
                rows[cells[0]] = (int(cells[1]), float(cells[3]))
        if "f16" not in rows:
            print(f"{path}: no f16 row", file=sys.stderr)
            continue
        base = rows["f16"][1]
        for codec, (depth, tok) in rows.items():
            if codec != "f16":
                print(f"| {os.path.basename(path)} | {gpu} | {depth} | {codec} | {tok:.1f} | {base:.1f} | {tok / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
