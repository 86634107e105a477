#pragma once
// Record layouts as plain structs: the byte layout of one encoded vector (one token of
// one head) for each quantizer, at compile-time dimensions. The reference code in
// src/core writes exactly these bytes (tests check record_bytes() == sizeof), and the
// CUDA kernels read them. All fields little-endian; fp16 fields are IEEE binary16;
// code arrays are LSB-first bit streams (packing.h). docs/FORMATS.md explains each.
#include <cstdint>

namespace tq::blocks {

// mse (turbo*, rht*, rotor*, iso*, planar*, sq*): norm, then D codes of B bits.
template <int D, int B>
struct MseRecord {
  uint16_t norm;  // ‖x‖, or ‖x‖/‖c[idx]‖ for corrected-norm rows
  uint8_t codes[D * B / 8];
};

// mse with fractional width: the first D/2 codes at BH bits, the rest at BL bits.
template <int D, int BH, int BL>
struct MseSplitRecord {
  uint16_t norm;
  uint8_t codes_hi[(D / 2) * BH / 8];
  uint8_t codes_lo[(D / 2) * BL / 8];
};

// prod (turbo*p): norm, residual norm, (B−1)-bit codes, D sign bits of S·r (1 = +1).
template <int D, int B>
struct ProdRecord {
  uint16_t norm;
  uint16_t residual_norm;
  uint8_t codes[D * (B - 1) / 8];
  uint8_t signs[D / 8];
};

// group (v*g*): one of these per G coordinates; x = min + step·code.
template <int G, int B>
struct GroupBlock {
  uint16_t min;
  uint16_t step;
  uint8_t codes[G * B / 8];
};

// llama.cpp q8_0 / q4_0 blocks of 32 coordinates.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];  // low nibble: coordinate j, high nibble: coordinate j + 16; x = d·(q − 8)
};

// fp8: one fp16 scale per vector, then D OCP E4M3 codes (fp8.h); x = s·e4m3(code).
template <int D>
struct Fp8Record {
  uint16_t scale;  // max|y|/448 rounded up to fp16
  uint8_t codes[D];
};

static_assert(sizeof(MseRecord<128, 3>) == 50);
static_assert(sizeof(MseRecord<128, 4>) == 66);
static_assert(sizeof(MseRecord<64, 3>) == 26);
static_assert(sizeof(MseRecord<256, 3>) == 98);
static_assert(sizeof(MseSplitRecord<128, 3, 2>) == 42);
static_assert(sizeof(MseSplitRecord<128, 4, 3>) == 58);
static_assert(sizeof(ProdRecord<128, 3>) == 52);
static_assert(sizeof(GroupBlock<32, 3>) == 16);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(Fp8Record<64>) == 66);
static_assert(sizeof(Fp8Record<128>) == 130);
static_assert(sizeof(Fp8Record<256>) == 258);

}  // namespace tq::blocks
