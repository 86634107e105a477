#!/usr/bin/env python3
"""CPU model of reg3_levels.patch's operand decode (3-bit codes to f16 operands by byte
permutes over register tables): for random levels and codes, the key operands (one
token, codes (0, 1) and (2, 3) of each four) and the value operands (two tokens, one dim
per half) must equal the half2 words the pair table gives. Checks the nibble spreading
and every permute selector the patch uses.
  python3 bench/cuda/session36/reg3_model.py
"""
import random
import struct

import numpy as np


def byte_perm(x, y, s):
    """CUDA's __byte_perm: byte n of the result is byte (s >> 4n) & 7 of {y, x}."""
    b = struct.pack("<II", x & 0xFFFFFFFF, y & 0xFFFFFFFF)
    return sum(b[(s >> (4 * n)) & 7] << (8 * n) for n in range(4))


def nibbles8(f):
    x = (f & 0xFFF) | ((f << 4) & 0x0FFF0000)
    y = (x & 0x003F003F) | ((x << 2) & 0x3F003F00)
    return ((y & 0x07070707) | ((y << 1) & 0x70707070)) & 0xFFFFFFFF


def main():
    rng = random.Random(1)
    for trial in range(200):
        levels = np.sort(np.random.default_rng(trial).standard_normal(8)).astype(np.float16)
        h = [int(v) for v in levels.view(np.uint16)]
        lo0 = sum((h[i] & 0xFF) << (8 * i) for i in range(4))
        lo1 = sum((h[i + 4] & 0xFF) << (8 * i) for i in range(4))
        hi0 = sum((h[i] >> 8) << (8 * i) for i in range(4))
        hi1 = sum((h[i + 4] >> 8) << (8 * i) for i in range(4))
        pair = lambda a, b: h[a] | h[b] << 16  # the pair table's half2 (first code low)
        for _ in range(50):
            c = [[rng.randrange(8) for _ in range(8)] for _ in range(2)]  # two tokens
            # 24 code bits, garbage above (field_to leaves it there)
            e = [nibbles8(sum(x << (3 * i) for i, x in enumerate(t)) | rng.getrandbits(8) << 24) for t in c]
            for half in range(2):
                sel = [x >> 16 if half else x for x in e]
                lo = [byte_perm(lo0, lo1, s) for s in sel]
                hi = [byte_perm(hi0, hi1, s) for s in sel]
                k = c[0][4 * half: 4 * half + 4]
                assert byte_perm(lo[0], hi[0], 0x5140) == pair(k[0], k[1])
                assert byte_perm(lo[0], hi[0], 0x7362) == pair(k[2], k[3])
                for pr in range(2):
                    s = 0x7362 if pr else 0x5140
                    p, q = byte_perm(lo[0], lo[1], s), byte_perm(hi[0], hi[1], s)
                    d = 4 * half + 2 * pr
                    assert byte_perm(p, q, 0x5140) == pair(c[0][d], c[1][d])
                    assert byte_perm(p, q, 0x7362) == pair(c[0][d + 1], c[1][d + 1])
    print("reg3_model: every key and value operand equals the pair table's (10,000 cases)")


if __name__ == "__main__":
    main()
