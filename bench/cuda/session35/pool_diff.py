#!/usr/bin/env python3
"""turbo3 records written by the auto quantize (the tensor-core kernel on large writes: the
near-tie contract) against the exact tiled kernel, on the same random f16 K/V (8 KV heads,
d 128, written by bench_cuda.py's fill_cache): per seed and side, how many
records differ and where (record index = slot * KV heads + head).
  python3 bench/cuda/session35/pool_diff.py --lib build-cuda/src/capi/libturboquant.so
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
import bench_cuda as bc  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--codec", default="turbo3")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=32768)
    args = ap.parse_args()
    lib = bc.load_lib(os.path.abspath(args.lib))
    # One row whose block table is the identity: slot = token.
    tables = torch.arange(args.tokens // bc.BLOCK, device="cuda", dtype=torch.int32).view(1, -1)
    for seed in range(args.seeds):
        caches = {}
        for kernel in ("auto", "tiled"):
            gen = torch.Generator(device="cuda").manual_seed(seed)
            caches[kernel] = bc.Cache(lib, args.codec, args.codec, args.tokens)
            bc.fill_cache(caches[kernel], 1, args.tokens, tables, gen, kernel)
        torch.cuda.synchronize()
        for kv, (bad, n) in enumerate(bc.records_differing(caches["auto"], caches["tiled"])):
            print(f"seed {seed} {'K' if kv == 0 else 'V'}: {len(bad)} of {n} records differ"
                  + (f"; first: {bad[:16].tolist()}" if len(bad) else ""), flush=True)
        for cache in caches.values():
            cache.close()

if __name__ == "__main__":
    main()
