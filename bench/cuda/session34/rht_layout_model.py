#!/usr/bin/env python3
"""Model of rht_rounds<D, C, L0> (rht_direct.patch, src/cuda/rht_lanes.cuh) in float32:
D/C lanes of C registers, register e of lane b = coordinate
(e mod 2^L0) | b << L0 | (e >> L0) << (L0 + log2(D/C)); in-lane stages pair registers,
the others pair lanes (the lower lane adds the upper's value, the upper subtracts itself
from the lower's: one rounding each). Checks, bit for bit, against RhtRotation::forward's
order (rotation_rht.cpp: gather through perm, then per round signs, fwht by increasing
span, scale) for every layout the patch uses, one and two rounds; and that the patch's
`off` tables (pair k = registers 2k, 2k + 1) give that layout. Exits 1 on a mismatch.
  python3 bench/cuda/session34/rht_layout_model.py"""
import sys

import numpy as np

f32 = np.float32


def reference(x, perm, signs, scale):
    y = x[perm].astype(f32)
    n = len(y)
    for s in signs:
        y = (y * s).astype(f32)
        h = 1
        while h < n:
            for i in range(0, n, 2 * h):
                a, b = y[i:i + h].copy(), y[i + h:i + 2 * h].copy()
                y[i:i + h], y[i + h:i + 2 * h] = a + b, a - b
            h *= 2
        y = (y * scale).astype(f32)
    return y


def coord(e, b, L0, LB):
    return (e & ((1 << L0) - 1)) | (b << L0) | ((e >> L0) << (L0 + LB))


def model(x, perm, signs, scale, D, C, L0):
    lanes = D // C
    LB, LD = lanes.bit_length() - 1, D.bit_length() - 1
    # gather with the first round's signs as sign flips
    y = np.array([[(-1 if signs[0][coord(e, b, L0, LB)] < 0 else 1) * x[perm[coord(e, b, L0, LB)]]
                   for e in range(C)] for b in range(lanes)], dtype=f32)
    for rnd in range(len(signs)):
        if rnd > 0:
            for b in range(lanes):
                for e in range(C):
                    y[b, e] = f32(y[b, e] * signs[rnd][coord(e, b, L0, LB)])
        for k in range(LD):
            if k < L0 or k >= L0 + LB:
                h = 1 << k if k < L0 else 1 << (k - LB)
                for b in range(lanes):
                    for e in range(C):
                        if e & h == 0:
                            lo, hi = y[b, e], y[b, e + h]
                            y[b, e], y[b, e + h] = f32(lo + hi), f32(lo - hi)
            else:
                hb = 1 << (k - L0)
                z = y.copy()
                for b in range(lanes):
                    other = z[b ^ hb]
                    y[b] = (other - z[b]).astype(f32) if b & hb else (z[b] + other).astype(f32)
        y = (y * f32(scale)).astype(f32)
    out = np.zeros(D, dtype=f32)
    for b in range(lanes):
        for e in range(C):
            out[coord(e, b, L0, LB)] = y[b, e]
    return out


def off_table(kind, D, t):
    KC = D // 16
    if kind == "uniform":  # decode_mma.cu: t·D/4 + 2k
        return [t * (D // 4) + 2 * k for k in range(2 * KC)]
    return [16 * (k // 2) + 4 * t + 2 * (k % 2) for k in range(2 * KC)]  # frag_q_dim: 16kc + 4t + 2r


def main():
    rng = np.random.default_rng(7)
    bad = 0
    for D in (64, 128, 256):
        layouts = [("quantize lanes", 32, 5), ("warp / prepare", D // 32, 0), ("uniform", D // 4, (D // 4).bit_length() - 1),
                   ("frag", D // 4, 2)]
        for name, C, L0 in layouts:
            for rounds in (1, 2):
                x = rng.standard_normal(D).astype(f32)
                perm = rng.permutation(D)
                signs = [np.where(rng.random(D) < 0.5, -1.0, 1.0).astype(f32) for _ in range(rounds)]
                scale = f32(1.0) / np.sqrt(f32(D))
                want, got = reference(x, perm, signs, scale), model(x, perm, signs, scale, D, C, L0)
                same = np.array_equal(want.view(np.uint32), got.view(np.uint32))
                bad += not same
                print(f"D={D:3d} {name:15s} C={C:2d} L0={L0} rounds={rounds}: {'bit-identical' if same else 'MISMATCH'}")
            if name in ("uniform", "frag"):
                LB = (D // C).bit_length() - 1
                for t in range(4):
                    regs = [o + j for o in off_table(name, D, t) for j in (0, 1)]
                    if regs != [coord(e, t, L0, LB) for e in range(C)]:
                        bad += 1
                        print(f"D={D} {name}: lane {t}'s off table is not the L0={L0} layout")
    print("all layouts match" if not bad else f"{bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
