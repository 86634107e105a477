#!/usr/bin/env python3
"""turbo3 records written by the auto quantize (tensor cores, near-tie contract) against the
exact tiled kernel: run once per kernel (TQ_CUDA_QUANTIZE=tiled for the second, read once
per process) with --save, then --compare the two dumps. Random f16 K/V, 8 KV heads, d 128,
written in 16384-token chunks as bench_cuda.py does.
  python3 pool_diff.py --lib L --save auto.npz; TQ_CUDA_QUANTIZE=tiled python3 pool_diff.py --lib L --save tiled.npz
  python3 pool_diff.py --compare auto.npz tiled.npz"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))


def cudart():
    import ctypes
    for name in ("libcudart.so", "libcudart.so.13", "libcudart.so.12"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            pass
    raise SystemExit("no libcudart")


def save(args):
    import ctypes
    import torch
    import bench_cuda as bc
    lib = bc.load_lib(os.path.abspath(args.lib))
    tokens, out = args.tokens, {}
    for seed in range(args.seeds):
        gen = torch.Generator(device="cuda").manual_seed(seed)
        cache = bc.Cache(lib, "turbo3", "turbo3", tokens)
        for t0 in range(0, tokens, 16384):
            n = min(16384, tokens - t0)
            k = torch.randn(n, bc.N_KV, bc.D, device="cuda", generator=gen).half()
            v = torch.randn(n, bc.N_KV, bc.D, device="cuda", generator=gen).half()
            cache.quantize(k, v, torch.arange(t0, t0 + n, device="cuda", dtype=torch.int32))
        torch.cuda.synchronize()
        for kv in (0, 1):
            ptr, size = ctypes.c_void_p(), ctypes.c_size_t()
            fn = lib.tq_cuda_cache_pool
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                           ctypes.POINTER(ctypes.c_size_t)]
            cache._ok(fn(cache.h, 0, kv, ctypes.byref(ptr), ctypes.byref(size)))
            host = np.empty(size.value, dtype=np.uint8)
            cudart().cudaMemcpy(ctypes.c_void_p(host.ctypes.data), ptr, ctypes.c_size_t(size.value), 2)  # to host
            out[f"s{seed}_{kv}"] = host
            out[f"rb{kv}"] = np.array([cache.record_bytes(0, kv)])
        cache.close()
    np.savez(args.save, **out)


def compare(a_path, b_path):
    a, b = np.load(a_path), np.load(b_path)
    for key in sorted(k for k in a.files if k.startswith("s")):
        kv = int(key[-1])
        rb = int(a[f"rb{kv}"][0])
        x, y = a[key], b[key]
        n = len(x) // rb
        rec = (x[: n * rb].reshape(n, rb) != y[: n * rb].reshape(n, rb)).any(axis=1)
        bad = np.nonzero(rec)[0]
        print(f"{key} ({'K' if kv == 0 else 'V'}): {len(bad)} of {n} records differ"
              + (f", first {bad[:12].tolist()}" if len(bad) else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib")
    ap.add_argument("--save")
    ap.add_argument("--compare", nargs=2)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=32768)
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        save(args)


if __name__ == "__main__":
    main()
