#pragma once
// ggml's quantized block layouts, byte for byte (ggml-common.h), and the traits table that
// the GGUF reader and the dequantizers share. Every multi-byte field is little-endian; the
// structs are only used on little-endian hosts (checked below), and fp16 fields are read
// with tq::half_to_float.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "turboquant/blocks.h"
#include "turboquant/gguf.h"

static_assert(std::endian::native == std::endian::little, "GGUF blocks are read in place: little-endian hosts only");

namespace tq::gguf::blocks {

constexpr int kQK = 32;    // elements per block of the simple types
constexpr int kQK_K = 256; // elements per super-block of the K-quants
constexpr int kScaleBytesK = 12;  // 8 six-bit scales + 8 six-bit mins (Q4_K, Q5_K)

// x = d · (q − 8), q the 4-bit code; element j < 16 in the low nibble of qs[j], j + 16 in its high nibble.
// Also a cache codec: one struct for both (turboquant/blocks.h).
using Q4_0 = ::tq::blocks::BlockQ4_0;
// x = d · q + m.
struct Q4_1 { uint16_t d; uint16_t m; uint8_t qs[kQK / 2]; };
// 5-bit codes: low nibbles as Q4_0, bit 4 of element j in bit j of qh (u32). x = d · (q − 16).
struct Q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
// x = d · q + m.
struct Q5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
// x = d · q, q signed 8-bit. Also a cache codec (turboquant/blocks.h).
using Q8_0 = ::tq::blocks::BlockQ8_0;
// As Q8_0 plus s = d · Σq (used by dot products only).
struct Q8_1 { uint16_t d; uint16_t s; int8_t qs[kQK]; };

// 16 sub-blocks of 16: x = d · (scale & 15) · q − dmin · (scale >> 4), q 2-bit.
struct Q2_K { uint8_t scales[kQK_K / 16]; uint8_t qs[kQK_K / 4]; uint16_t d; uint16_t dmin; };
// 16 sub-blocks of 16 with 6-bit signed scales (offset 32): x = d · (s − 32) · (q − 4·!hbit).
struct Q3_K { uint8_t hmask[kQK_K / 8]; uint8_t qs[kQK_K / 4]; uint8_t scales[12]; uint16_t d; };
// 8 sub-blocks of 32: x = d · sc · q − dmin · m with 6-bit sc, m packed in `scales`.
struct Q4_K { uint16_t d; uint16_t dmin; uint8_t scales[kScaleBytesK]; uint8_t qs[kQK_K / 2]; };
// As Q4_K with a fifth bit per element in qh.
struct Q5_K { uint16_t d; uint16_t dmin; uint8_t scales[kScaleBytesK]; uint8_t qh[kQK_K / 8]; uint8_t qs[kQK_K / 2]; };
// 16 sub-blocks of 16: x = d · scale · (q − 32), q 6-bit split into ql (4 bits) and qh (2 bits).
struct Q6_K { uint8_t ql[kQK_K / 2]; uint8_t qh[kQK_K / 4]; int8_t scales[kQK_K / 16]; uint16_t d; };
// x = d · q with an f32 d; bsums are for dot products only.
struct Q8_K { float d; int8_t qs[kQK_K]; int16_t bsums[kQK_K / 16]; };

static_assert(sizeof(Q4_0) == 18);
static_assert(sizeof(Q4_1) == 20);
static_assert(sizeof(Q5_0) == 22);
static_assert(sizeof(Q5_1) == 24);
static_assert(sizeof(Q8_0) == 34);
static_assert(sizeof(Q8_1) == 36);
static_assert(sizeof(Q2_K) == 84);
static_assert(sizeof(Q3_K) == 110);
static_assert(sizeof(Q4_K) == 144);
static_assert(sizeof(Q5_K) == 176);
static_assert(sizeof(Q6_K) == 210);
static_assert(sizeof(Q8_K) == 292);

// Q4_K / Q5_K pack 8 six-bit scales and 8 six-bit mins into 12 bytes: sub-blocks 0..3 keep
// theirs in the low 6 bits of bytes 0..3 (scale) and 4..7 (min); sub-blocks 4..7 keep the
// low 4 bits in the nibbles of bytes 8..11 and the top 2 bits in bits 6..7 of bytes 0..7.
// static: the SIMD kernels compile this header for other ISAs; each file keeps its own copy.
static inline void scale_min_k4(int j, const uint8_t* q, int& scale, int& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Block i of a tensor, copied out: tensor data is only 32-byte aligned per tensor, and an
// 18-byte block is not aligned to anything.
template <typename Block>
Block load(const uint8_t* in, size_t i) {
  Block b;
  std::memcpy(&b, in + i * sizeof(Block), sizeof(Block));
  return b;
}

}  // namespace tq::gguf::blocks

namespace tq::gguf {

// n_blocks whole blocks from `in` to n_blocks · block_elements floats.
using DequantizeFn = void (*)(const uint8_t* in, size_t n_blocks, float* out);
// n_blocks · block_elements floats to n_blocks whole blocks.
using QuantizeFn = void (*)(const float* in, size_t n_blocks, uint8_t* out);

// One row per ggml type: the layout and the reference functions (null when the type is
// known by name only and cannot be converted).
struct TypeTraits {
  GgmlType type;
  const char* name;
  size_t block_elements;
  size_t block_bytes;
  DequantizeFn dequantize;
  QuantizeFn quantize;
};

// nullptr for ids that are not ggml types at all.
const TypeTraits* find_traits(GgmlType t);
// The row of a type dequantize() supports; tq::Error naming the type otherwise.
const TypeTraits& supported_traits(GgmlType t);

// Reference dequantizers, one per block layout (ggml_dequant.cpp, ggml_dequant_k.cpp).
void dequantize_f32(const uint8_t* in, size_t n, float* out);
void dequantize_f16(const uint8_t* in, size_t n, float* out);
void dequantize_bf16(const uint8_t* in, size_t n, float* out);
void dequantize_q4_0(const uint8_t* in, size_t n, float* out);
void dequantize_q4_1(const uint8_t* in, size_t n, float* out);
void dequantize_q5_0(const uint8_t* in, size_t n, float* out);
void dequantize_q5_1(const uint8_t* in, size_t n, float* out);
void dequantize_q8_0(const uint8_t* in, size_t n, float* out);
void dequantize_q8_1(const uint8_t* in, size_t n, float* out);
void dequantize_q2_k(const uint8_t* in, size_t n, float* out);
void dequantize_q3_k(const uint8_t* in, size_t n, float* out);
void dequantize_q4_k(const uint8_t* in, size_t n, float* out);
void dequantize_q5_k(const uint8_t* in, size_t n, float* out);
void dequantize_q6_k(const uint8_t* in, size_t n, float* out);
void dequantize_q8_k(const uint8_t* in, size_t n, float* out);

// Reference quantizers (ggml_quantize.cpp): round to nearest, as ggml's *_ref functions.
void quantize_f32(const float* in, size_t n, uint8_t* out);
void quantize_f16(const float* in, size_t n, uint8_t* out);
void quantize_bf16(const float* in, size_t n, uint8_t* out);
void quantize_q4_0(const float* in, size_t n, uint8_t* out);
void quantize_q4_1(const float* in, size_t n, uint8_t* out);
void quantize_q5_0(const float* in, size_t n, uint8_t* out);
void quantize_q5_1(const float* in, size_t n, uint8_t* out);
void quantize_q8_0(const float* in, size_t n, uint8_t* out);

}  // namespace tq::gguf
