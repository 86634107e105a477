#!/usr/bin/env python3
"""How far a few near-tie code flips move a decode row's output: float64 model of a 3-bit
Lloyd-Max cache (per-vector norm, N(0,1) levels) over bench_cuda.py's shapes (4096 tokens,
8 KV heads, 32 query heads, d = 128, random normal q, k, v), attention with and without
`flips` codes moved one level (half in keys, half in values), relative L2 error of the 32
heads' outputs. Six random trials per flip count.
  python3 bench/cuda/session35/flip_model.py
"""
import numpy as np

TOKENS, KV_HEADS, GROUP, D = 4096, 8, 4, 128
LEVELS = np.array([-2.152, -1.344, -0.756, -0.245, 0.245, 0.756, 1.344, 2.152])  # 3-bit Lloyd-Max, N(0,1)
BOUNDS = (LEVELS[1:] + LEVELS[:-1]) / 2


def quantize(x):
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.searchsorted(BOUNDS, x / norm * np.sqrt(D)), norm


def dequantize(codes, norm):
    return LEVELS[codes] / np.sqrt(D) * norm


def attend(q, k, v):
    out = np.zeros((KV_HEADS * GROUP, D))
    for h in range(KV_HEADS):
        rows = slice(h * GROUP, (h + 1) * GROUP)
        s = q[rows] @ k[:, h].T / np.sqrt(D)
        w = np.exp(s - s.max(axis=1, keepdims=True))
        out[rows] = (w / w.sum(axis=1, keepdims=True)) @ v[:, h]
    return out


def flip(codes, count, rng):
    """`count` random codes moved one level (inward at the ends)."""
    flat = codes.copy().reshape(-1)
    idx = rng.integers(0, flat.size, count)
    step = np.where(flat[idx] == len(LEVELS) - 1, -1, np.where(flat[idx] == 0, 1, rng.choice([-1, 1], count)))
    flat[idx] += step
    return flat.reshape(codes.shape)


def main():
    rng = np.random.default_rng(0)
    counts = (5, 20, 100)
    print("| trial | " + " | ".join(f"{c} flips" for c in counts) + " |")
    print("|---:|" + "---:|" * len(counts))
    for trial in range(6):
        k, v = rng.standard_normal((2, TOKENS, KV_HEADS, D))
        q = rng.standard_normal((KV_HEADS * GROUP, D))
        (ck, nk), (cv, nv) = quantize(k), quantize(v)
        base = attend(q, dequantize(ck, nk), dequantize(cv, nv))
        errs = []
        for count in counts:
            out = attend(q, dequantize(flip(ck, count // 2, rng), nk), dequantize(flip(cv, count - count // 2, rng), nv))
            errs.append(np.linalg.norm(out - base) / np.linalg.norm(base))
        print(f"| {trial} | " + " | ".join(f"{e:.1e}" for e in errs) + " |")


if __name__ == "__main__":
    main()
