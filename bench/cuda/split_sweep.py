#!/usr/bin/env python3
"""Decode time against forced split counts (tuning aid for decode_num_splits), one codec,
one batch and context per call; the library's own choice is timed as splits = 0.
  python3 bench/cuda/split_sweep.py --lib build/libturboquant.so --codec turbo3 --batch 1 --ctx 4096 --splits 0,8,16,32,64
"""
import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import bench_cuda as bc  # noqa: E402


def filled_decode(lib, codec, batch, ctx):
    """A cache of `codec` holding `batch` rows of `ctx` random tokens (seed 5, block tables
    shuffled) and random queries; returns (cache, the library's split count, time_at) where
    time_at(splits, flush) times one decode step at that split count (0: the library's) as
    bc.time_ms does (median, min, max in ms)."""
    gen = torch.Generator(device="cuda").manual_seed(5)
    max_blocks = ctx // bc.BLOCK
    tables = torch.randperm(batch * max_blocks, device="cuda", generator=gen).to(torch.int32).view(batch, max_blocks)
    q = torch.randn(batch, bc.N_Q, bc.D, device="cuda", generator=gen).half()
    out = torch.empty(batch, bc.N_Q, bc.D, device="cuda", dtype=torch.float32)
    cache = bc.Cache(lib, codec, codec, batch * ctx)
    bc.fill_cache(cache, batch, ctx, tables, gen)
    lens = torch.full((batch,), ctx, dtype=torch.int32, device="cuda")
    scale = 1.0 / math.sqrt(bc.D)

    def time_at(splits, flush):
        ws = torch.empty(cache.workspace_bytes(batch, bc.N_Q, tables, ctx, splits), dtype=torch.uint8, device="cuda")
        run = cache.decode_call(q, tables, lens, ctx, out, ws, scale=scale, num_splits=splits)
        return bc.time_ms(run, flush, warmup=5, reps=50)

    return cache, cache.num_splits(batch, bc.N_Q, tables, ctx), time_at


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--codec", default="turbo3")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--splits", default="0,8,16,32,64")
    args = ap.parse_args()
    lib = bc.load_lib(os.path.abspath(args.lib))
    flush_buf = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    flush = lambda: bc.flush_l2(flush_buf)
    cache, auto, time_at = filled_decode(lib, args.codec, args.batch, args.ctx)
    for s in [int(x) for x in args.splits.split(",")]:
        ms, lo, hi = time_at(s, flush)
        print(f"sweep {args.codec} b{args.batch} ctx {args.ctx} splits {s if s else auto}{' (auto)' if s == 0 else ''}: "
              f"{ms*1e3:.1f} us (min {lo*1e3:.1f})", flush=True)
    cache.close()


if __name__ == "__main__":
    main()
