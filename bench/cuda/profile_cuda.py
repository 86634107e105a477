#!/usr/bin/env python3
"""One decode-attention (or, with --quantize N, one quantize-on-write) configuration, for
Nsight Compute:
  ncu --clock-control none --kernel-name regex:decode_mma --launch-skip 3 --launch-count 1 --section SpeedOfLight \
      --section Occupancy --section WarpStateStats --section InstructionStats \
      python3 bench/cuda/profile_cuda.py --lib build-cuda/src/capi/libturboquant.so --codec turbo3 --batch 8 --ctx 65536
(decode_mma: the tensor-core split kernel; decode_split: the CUDA-core one; quantize_warp
and quantize_kernel with --quantize.)
"""
import argparse
import importlib.util
import math
import os

import torch

spec = importlib.util.spec_from_file_location(
    "bench_cuda", os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "bench_cuda.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default="build-cuda/src/capi/libturboquant.so")
    ap.add_argument("--codec", default="turbo3")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=65536)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quantize", type=int, default=0, help="quantize this many vectors instead")
    args = ap.parse_args()
    lib = bench.load_lib(os.path.abspath(args.lib))
    gen = torch.Generator(device="cuda").manual_seed(5)
    if args.quantize:
        n_tok = args.quantize // (2 * bench.N_KV)
        cache = bench.Cache(lib, args.codec, args.codec, n_tok)
        k = torch.randn(n_tok, bench.N_KV, bench.D, device="cuda", generator=gen).half()
        v = torch.randn(n_tok, bench.N_KV, bench.D, device="cuda", generator=gen).half()
        slots = torch.arange(n_tok, dtype=torch.int32, device="cuda")
        for _ in range(args.reps):
            cache.quantize(k, v, slots)
        torch.cuda.synchronize()
        cache.close()
        return
    b, ctx, blocks = args.batch, args.ctx, args.ctx // bench.BLOCK
    tables = torch.randperm(b * blocks, device="cuda", generator=gen).to(torch.int32).view(b, blocks)
    cache = bench.Cache(lib, args.codec, args.codec, b * ctx)
    bench.fill_cache(cache, b, ctx, tables, gen)
    q = torch.randn(b, bench.N_Q, bench.D, device="cuda", generator=gen).half()
    out = torch.empty(b, bench.N_Q, bench.D, device="cuda")
    lens = torch.full((b,), ctx, dtype=torch.int32, device="cuda")
    ws = torch.empty(cache.workspace_bytes(b, bench.N_Q, tables, ctx), dtype=torch.uint8, device="cuda")
    run = cache.decode_call(q, tables, lens, ctx, out, ws, scale=1.0 / math.sqrt(bench.D))
    for _ in range(args.reps):
        run()
    torch.cuda.synchronize()
    cache.close()


if __name__ == "__main__":
    main()
