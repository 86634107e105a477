#!/usr/bin/env python3
"""Static instruction counts of a kernel's loops from `cuobjdump -sass` output: for each
backward branch of the function whose mangled name matches NAME, the instructions between
its target and itself, by opcode (a static count: branches inside a loop are counted
whole). No GPU needed; cuobjdump comes from PyPI through bench/cuda/sass_tools.sh.
Usage: PATH=$(bench/cuda/sass_tools.sh):$PATH; cuobjdump -sass obj.o > k.sass;
bench/cuda/sass_loops.py k.sass NAME [--min 50]"""
import argparse
import collections
import re

INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")


def functions(path):
    name, body = None, []
    for line in open(path):
        m = re.search(r"Function : (\S+)", line)
        if m:
            if name:
                yield name, body
            name, body = m.group(1), []
        elif name:
            i = INSTR.search(line)
            if i:
                body.append((int(i.group(1), 16), i.group(3), i.group(4).strip()))
    if name:
        yield name, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sass")
    ap.add_argument("name", help="substring of the mangled name")
    ap.add_argument("--min", type=int, default=50, help="smallest loop to print")
    args = ap.parse_args()
    for name, body in functions(args.sass):
        if args.name not in name:
            continue
        print(f"## {name}: {len(body)} instructions")
        for addr, op, rest in body:
            if not op.startswith("BRA"):
                continue
            t = re.search(r"0x([0-9a-f]+)", rest)
            if not t or int(t.group(1), 16) > addr:
                continue
            lo = int(t.group(1), 16)
            loop = [o for a, o, _ in body if lo <= a <= addr]
            if len(loop) < args.min:
                continue
            ops = collections.Counter(o.split(".")[0] for o in loop)
            print(f"loop {lo:#x}..{addr:#x}: {len(loop)} instructions")
            print("  " + ", ".join(f"{o} {n}" for o, n in ops.most_common()))


if __name__ == "__main__":
    main()
