#!/usr/bin/env python3
"""Decode time at the library's split count against the same count halved and thirded
(one wave of resident CTAs where the library takes two), for several codecs, batches and
contexts in one process. One line per (codec, batch, context, splits).
  python3 bench/cuda/session35/wave_sweep.py --lib build/libturboquant.so --codecs f16,q8_0 --batches 1,8 --contexts 4096,65536
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import split_sweep  # noqa: E402
from split_sweep import bc  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--codecs", default="f16,q8_0,q4_0h,turbo3,rht3")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--contexts", default="4096,16384,65536,131072")
    ap.add_argument("--divisors", default="2,3")
    args = ap.parse_args()
    lib = bc.load_lib(os.path.abspath(args.lib))
    flush_buf = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    flush = lambda: bc.flush_l2(flush_buf)
    for codec in args.codecs.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            for ctx in [int(c) for c in args.contexts.split(",")]:
                cache, auto, time_at = split_sweep.filled_decode(lib, codec, batch, ctx)
                counts = [auto] + sorted({max(1, auto // int(k)) for k in args.divisors.split(",")} - {auto}, reverse=True)
                times = [time_at(s, flush)[0] * 1e3 for s in counts]
                cells = " ".join(f"{s}:{t:.1f}({t / times[0]:.3f})" for s, t in zip(counts, times))
                print(f"wave {codec} b{batch} ctx {ctx} auto {cells}", flush=True)
                cache.close()
                del time_at
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
