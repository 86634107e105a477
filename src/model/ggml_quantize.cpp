// Reference quantizers (round to nearest, ggml's *_ref rules) for writing test models.
// They need not be optimal, only exact inverses of the dequantizers up to rounding.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ggml_types.h"
#include "turboquant/half.h"
#include "turboquant/quantizers.h"

namespace tq::gguf {
namespace {

template <typename Block>
void store_block(const Block& b, uint8_t* out, size_t i) {
  std::memcpy(out + i * sizeof(Block), &b, sizeof(Block));
}

// The signed value of largest magnitude: symmetric types map it to the most negative code.
float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// Symmetric 4/5-bit blocks: d = max / −2^(bits−1), q = clamp(x/d + 2^(bits−1), 0, 2^bits − 1).
template <int kBits>
void quantize_symmetric(const float* x, uint16_t& d_out, uint8_t q[blocks::kQK]) {
  constexpr int kHalf = 1 << (kBits - 1);
  const float d = signed_absmax(x, blocks::kQK) / -static_cast<float>(kHalf);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  d_out = float_to_half(d);
  for (int j = 0; j < blocks::kQK; ++j) {
    const int v = static_cast<int>(x[j] * id + static_cast<float>(kHalf) + 0.5f);
    q[j] = static_cast<uint8_t>(std::clamp(v, 0, 2 * kHalf - 1));
  }
}

// Asymmetric 4/5-bit blocks: x ≈ d · q + m over [min, max].
template <int kBits>
void quantize_affine(const float* x, uint16_t& d_out, uint16_t& m_out, uint8_t q[blocks::kQK]) {
  constexpr int kLevels = (1 << kBits) - 1;
  const float lo = *std::min_element(x, x + blocks::kQK);
  const float hi = *std::max_element(x, x + blocks::kQK);
  const float d = (hi - lo) / static_cast<float>(kLevels);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  d_out = float_to_half(d);
  m_out = float_to_half(lo);
  for (int j = 0; j < blocks::kQK; ++j) {
    const int v = static_cast<int>((x[j] - lo) * id + 0.5f);
    q[j] = static_cast<uint8_t>(std::clamp(v, 0, kLevels));
  }
}

void pack_nibbles(const uint8_t q[blocks::kQK], uint8_t qs[blocks::kQK / 2]) {
  for (int j = 0; j < blocks::kQK / 2; ++j) qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
}

void pack_fifth_bits(const uint8_t q[blocks::kQK], uint8_t qh[4]) {
  uint32_t bits = 0;
  for (int j = 0; j < blocks::kQK; ++j) bits |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  std::memcpy(qh, &bits, 4);
}

}  // namespace

void quantize_f32(const float* in, size_t n, uint8_t* out) { std::memcpy(out, in, n * sizeof(float)); }

void quantize_f16(const float* in, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) store_half(out + 2 * i, in[i]);
}

void quantize_bf16(const float* in, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, in + i, 4);
    uint16_t h;
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
      h = static_cast<uint16_t>((bits >> 16) | 64);  // keep NaN quiet
    } else {
      h = static_cast<uint16_t>((bits + (0x7fffu + ((bits >> 16) & 1u))) >> 16);  // round to nearest even
    }
    out[2 * i] = static_cast<uint8_t>(h & 0xff);
    out[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
}

// q4_0 and q8_0 are also cache codecs: one implementation, in src/core.
void quantize_q4_0(const float* in, size_t n, uint8_t* out) { encode_q4_0_blocks(in, n, out); }

void quantize_q4_1(const float* in, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i, in += blocks::kQK) {
    blocks::Q4_1 b;
    uint8_t q[blocks::kQK];
    quantize_affine<4>(in, b.d, b.m, q);
    pack_nibbles(q, b.qs);
    store_block(b, out, i);
  }
}

void quantize_q5_0(const float* in, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i, in += blocks::kQK) {
    blocks::Q5_0 b;
    uint8_t q[blocks::kQK];
    quantize_symmetric<5>(in, b.d, q);
    pack_nibbles(q, b.qs);
    pack_fifth_bits(q, b.qh);
    store_block(b, out, i);
  }
}

void quantize_q5_1(const float* in, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i, in += blocks::kQK) {
    blocks::Q5_1 b;
    uint8_t q[blocks::kQK];
    quantize_affine<5>(in, b.d, b.m, q);
    pack_nibbles(q, b.qs);
    pack_fifth_bits(q, b.qh);
    store_block(b, out, i);
  }
}

void quantize_q8_0(const float* in, size_t n, uint8_t* out) { encode_q8_0_blocks(in, n, out); }

}  // namespace tq::gguf
