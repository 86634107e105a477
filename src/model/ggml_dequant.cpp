// Reference dequantization of the plain float types and the 32-element block types.
#include <cstring>

#include "ggml_types.h"
#include "turboquant/half.h"

namespace tq::gguf {
namespace {

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The 32 codes of a 4-bit block: element j < 16 in the low nibble of qs[j], j ≥ 16 in
// the high nibble of qs[j − 16]; 5-bit blocks add bit j of the little-endian u32 qh as bit 4.
void nibble_codes(const uint8_t qs[16], int q[32]) {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0x0f;
    q[j + 16] = qs[j] >> 4;
  }
}
void fifth_bits(const uint8_t qh_bytes[4], int q[32]) {
  const uint32_t qh = load_u32(qh_bytes);
  for (int j = 0; j < 32; ++j) q[j] |= static_cast<int>(((qh >> j) & 1u) << 4);
}

// x = d·(q − offset) for the symmetric types, x = d·q + m for the affine ones.
void scale_codes(const int q[32], float d, int offset, float* out) {
  for (int j = 0; j < 32; ++j) out[j] = d * static_cast<float>(q[j] - offset);
}
void scale_codes_affine(const int q[32], float d, float m, float* out) {
  for (int j = 0; j < 32; ++j) out[j] = d * static_cast<float>(q[j]) + m;
}

}  // namespace

void dequantize_f32(const uint8_t* in, size_t n, float* out) { std::memcpy(out, in, n * sizeof(float)); }

void dequantize_f16(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = load_half(in + 2 * i);
}

void dequantize_bf16(const uint8_t* in, size_t n, float* out) {
  // bfloat16 is the top half of an f32.
  for (size_t i = 0; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(in[2 * i] | (in[2 * i + 1] << 8)) << 16;
    std::memcpy(out + i, &bits, 4);
  }
}

void dequantize_q4_0(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i, out += blocks::kQK) {
    const auto b = blocks::load<blocks::Q4_0>(in, i);
    int q[32];
    nibble_codes(b.qs, q);
    scale_codes(q, half_to_float(b.d), 8, out);
  }
}

void dequantize_q4_1(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i, out += blocks::kQK) {
    const auto b = blocks::load<blocks::Q4_1>(in, i);
    int q[32];
    nibble_codes(b.qs, q);
    scale_codes_affine(q, half_to_float(b.d), half_to_float(b.m), out);
  }
}

void dequantize_q5_0(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i, out += blocks::kQK) {
    const auto b = blocks::load<blocks::Q5_0>(in, i);
    int q[32];
    nibble_codes(b.qs, q);
    fifth_bits(b.qh, q);
    scale_codes(q, half_to_float(b.d), 16, out);
  }
}

void dequantize_q5_1(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i, out += blocks::kQK) {
    const auto b = blocks::load<blocks::Q5_1>(in, i);
    int q[32];
    nibble_codes(b.qs, q);
    fifth_bits(b.qh, q);
    scale_codes_affine(q, half_to_float(b.d), half_to_float(b.m), out);
  }
}

void dequantize_q8_0(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i, out += blocks::kQK) {
    const auto b = blocks::load<blocks::Q8_0>(in, i);
    const float d = half_to_float(b.d);
    for (int j = 0; j < blocks::kQK; ++j) out[j] = d * static_cast<float>(b.qs[j]);
  }
}

void dequantize_q8_1(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i, out += blocks::kQK) {
    const auto b = blocks::load<blocks::Q8_1>(in, i);
    const float d = half_to_float(b.d);
    for (int j = 0; j < blocks::kQK; ++j) out[j] = d * static_cast<float>(b.qs[j]);
  }
}

}  // namespace tq::gguf
