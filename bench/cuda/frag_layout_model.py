#!/usr/bin/env python3
"""Bit-level model of the fragment path's lane maps (src/cuda/record_frag.cuh) for q8_0 and
q4_0 at d = 64, 128, 256: builds each lane's mma A / B fragments as the device functions do
(word loads, shifts, byte permutes, biased pairs), runs m16n8k16 by its fragment layout, and
checks S = K Qᵀ and O = Pᵀ V against the dequantized records of one 16-token step. CPU
only: it checks the maps, not the compiled kernel (the device tests do that).
Usage: python3 bench/cuda/frag_layout_model.py"""
import random
import sys

import numpy as np

CODECS = {  # block bytes, bias, byte_of, shift_of, biased_pair
    "q8_0": (34, 1152, lambda j: j, lambda j: 0,
             lambda w: [1024 + ((w >> (8 * i)) & 0xFF ^ 0x80) for i in (0, 1)]),
    "q4_0": (18, 1032, lambda j: j & 15, lambda j: 0 if j < 16 else 4,
             lambda w: [1024 + ((w >> (8 * i)) & 0x0F) for i in (0, 1)]),
}


def byte_perm(x, y, sel):
    b = [(x >> (8 * i)) & 0xFF for i in range(4)] + [(y >> (8 * i)) & 0xFF for i in range(4)]
    return sum(b[(sel >> (4 * i)) & 7] << (8 * i) for i in range(4))


def row_token(D, r):
    return (2 * r if r < 8 else 2 * r - 15) if D == 128 else r


def make_records(codec, D, rng):
    bb = CODECS[codec][0]
    recs, deq = [], []
    for _ in range(16):
        rec, x = bytearray(), []
        for _ in range(D // 32):
            s = np.float16(rng.uniform(1e-3, 2e-2))
            rec += s.tobytes()
            if codec == "q8_0":
                q = [rng.randrange(-128, 128) for _ in range(32)]
                rec += bytes(v & 0xFF for v in q)
            else:
                n = [rng.randrange(16) for _ in range(32)]
                rec += bytes(n[j] | n[j + 16] << 4 for j in range(16))
                q = [v - 8 for v in n]
            x += [float(np.float16(np.float16(v) * s)) for v in q]
        assert len(rec) == bb * D // 32
        recs.append(bytes(rec))
        deq.append(x)
    return recs, np.array(deq)


def word(rec, off):
    assert off % 2 == 0
    return int.from_bytes(rec[off:off + 4], "little")


def dequant(codec, w, s):  # two halves of (biased pair − bias) · s
    _, bias, _, _, pair = CODECS[codec]
    return [float(np.float16(np.float16(c - bias) * s[i])) for i, c in enumerate(pair(w))]


def scale(rec, b, bb):
    return np.frombuffer(rec[bb * b:bb * b + 2], np.float16)[0]


def mma(A, B):  # A[lane] = 4 regs of 2 halves, B[lane] = 2 regs: returns C[16][8]
    a, bm = np.zeros((16, 16)), np.zeros((16, 8))
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        for reg, (r, k) in enumerate([(g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8)]):
            a[r][k], a[r][k + 1] = A[lane][reg]
        for reg, k in enumerate([2 * t, 2 * t + 8]):
            bm[k][g], bm[k + 1][g] = B[lane][reg]
    return a @ bm


def check(codec, D, rng):
    bb, _, byte_of, shift_of, _ = CODECS[codec]
    krec, K = make_records(codec, D, rng)
    vrec, V = make_records(codec, D, rng)
    Q = rng_np.standard_normal((8, D))
    P = rng_np.uniform(0, 1, (8, 16))
    # Scores: S[row r][head] = K[row_token(r)] · Q[head].
    S = np.zeros((16, 8))
    for kc in range(D // 16):
        A, B = [], []
        b, j = kc >> 1, 16 * (kc & 1)
        for lane in range(32):
            g, t = lane >> 2, lane & 3
            off = bb * b + 2 + byte_of(j) + 4 * t
            regs = []
            for rec in (krec[row_token(D, g)], krec[row_token(D, g + 8)]):
                w = word(rec, off) >> shift_of(j)
                s = [scale(rec, b, bb)] * 2
                regs.append((dequant(codec, w, s), dequant(codec, w >> 16, s)))
            A.append([regs[0][0], regs[1][0], regs[0][1], regs[1][1]])
            B.append([[Q[g][16 * kc + 4 * t + 2 * r + i] for i in (0, 1)] for r in (0, 1)])
        S += mma(A, B)
    want = np.array([K[row_token(D, r)] for r in range(16)]) @ Q.T
    ok = np.allclose(S, want, rtol=0, atol=1e-9)
    # Values: O[row][head] over m-tile m = Σ_slot V[token(slot)][dim] P[head][token(slot)].
    Pb = [[[P[g][row_token(D, k)] for k in (2 * t + 0, 2 * t + 1)], [P[g][row_token(D, k)] for k in (2 * t + 8, 2 * t + 9)]]
          for g, t in ((lane >> 2, lane & 3) for lane in range(32))]
    for b in range(D // 32):
        A = [[None] * 4, [None] * 4]
        lanes = [[], []]
        for lane in range(32):
            g, t = lane >> 2, lane & 3
            slots = [row_token(D, 2 * t + (x & 1) + 8 * (x >> 1)) for x in range(4)]
            w = [word(vrec[tok], bb * b + 2 + byte_of(4 * g)) >> shift_of(4 * g) for tok in slots]
            s = [scale(vrec[tok], b, bb) for tok in slots]
            for i in (0, 1):
                sel = 0x7362 if i else 0x5140
                lo, hi = byte_perm(w[0], w[1], sel), byte_perm(w[2], w[3], sel)
                lanes[i].append([dequant(codec, lo, s[0:2]), dequant(codec, lo >> 16, s[0:2]),
                                 dequant(codec, hi, s[2:4]), dequant(codec, hi >> 16, s[2:4])])
        for i in (0, 1):
            O = mma(lanes[i], Pb)
            for r in range(16):
                g, hi = r % 8, r // 8
                dim = 32 * b + 4 * g + 2 * i + hi
                ok &= np.allclose(O[r], V[:, dim] @ P.T, rtol=0, atol=1e-9)
    return ok


rng = random.Random(7)
rng_np = np.random.default_rng(7)
fails = 0
for codec in CODECS:
    for D in (64, 128, 256):
        ok = check(codec, D, rng)
        print(f"{codec} d={D}: {'ok' if ok else 'FAILED'}")
        fails += not ok
sys.exit(1 if fails else 0)
