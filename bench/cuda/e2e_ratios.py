#!/usr/bin/env python3
"""Each codec's decode tok/s against the f16 cache's of the same `tq bench model --markdown`
file, one row per (file, codec): the end-to-end goal's ratio, without an old/new pair.

  python3 bench/cuda/e2e_ratios.py bench/cuda/session35/call2/e2e_*.md
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "session25"))
from e2e_table import rows  # noqa: E402  (the decode column of a `tq bench model` table)


def main():
    print("| file | GPU | depth | codec | decode tok/s | f16 decode tok/s | codec / f16 |")
    print("|---|---|---:|---|---:|---:|---:|")
    for path in sys.argv[1:]:
        table, gpu = rows(path)
        if "f16" not in table:
            print(f"{path}: no f16 row", file=sys.stderr)
            continue
        base = table["f16"][1]
        for codec, (depth, tok) in table.items():
            if codec != "f16":
                print(f"| {os.path.basename(path)} | {gpu} | {depth} | {codec} | {tok:.1f} | {base:.1f} | {tok / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
