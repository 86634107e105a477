#!/usr/bin/env python3
"""Old-vs-new end-to-end table from the `tq bench model --markdown` files of a session's
device calls (e2e_<model>_<old|new>.md, or e2e_<model>_<old|new>_<round>.md, in each call's
folder).

  python3 bench/cuda/session25/e2e_table.py [--prefill] bench/cuda/session25/call2 bench/cuda/session25/call4

Prints one markdown row per (call, model, codec): old and new decode tok/s (--prefill: the
prefill column) and their ratio, and each library's codec / f16 ratio (both measured in the
same call)."""
import glob
import os
import re
import sys


COLUMN = 2 if "--prefill" in sys.argv else 3  # the table's prefill or decode tok/s
WHAT = "prefill" if COLUMN == 2 else "decode"


def rows(path):
    out, gpu = {}, ""
    for line in open(path):
        m = re.search(r"GPU: ([^(]+)\(", line)
        if m:
            gpu = m.group(1).strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and re.match(r"^[0-9.]+$", cells[COLUMN]) and cells[0] != "codec":
            out[cells[0]] = (int(cells[1]), float(cells[COLUMN]))
    return out, gpu


def main():
    print(f"| call | GPU | model shape | depth | codec | old {WHAT} tok/s | new {WHAT} tok/s | new / old | "
          "old: codec / f16 | new: codec / f16 |")
    print("|---|---|---|---:|---|---:|---:|---:|---:|---:|")
    for d in [a for a in sys.argv[1:] if a != "--prefill"]:
        for old_path in sorted(glob.glob(os.path.join(d, "e2e_*_old*.md"))):
            m = re.search(r"e2e_(.+)_old(_\d+)?\.md", old_path)
            model = m.group(1) + (f" (round {m.group(2)[1:]})" if m.group(2) else "")
            old, gpu = rows(old_path)
            new, _ = rows(old_path.replace("_old", "_new"))
            for codec in old:
                if codec not in new:
                    continue
                depth, o = old[codec]
                n = new[codec][1]
                print(f"| {os.path.basename(d)} | {gpu} | {model} | {depth} | {codec} | {o:.1f} | {n:.1f} | {n / o:.2f}x | "
                      f"{o / old['f16'][1]:.2f}x | {n / new['f16'][1]:.2f}x |")


if __name__ == "__main__":
    main()
