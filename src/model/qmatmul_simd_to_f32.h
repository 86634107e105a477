#pragma once
// Weight rows to f32 on 256-bit vectors, for the prefill tiles (dequantize, then BLAS
// sgemm): the per-element float operations of gguf::dequantize in the same order, so
// the tiles equal the reference's output (tests/model/test_qmatmul.cpp). Included after
// qmatmul_simd.h by qmatmul_avx2.cpp and qmatmul_avx512.cpp (no VNNI in here, so both
// compile the same code for their own ISA flags).
#include "qmatmul_simd.h"

namespace tq::model::qk {
namespace {

// out[0..32) = d·q − m for 32 signed 8-bit codes (m = 0: d·q, as the reference's
// `d * float(q)` with no subtraction rounds the same).
template <bool kMinus>
inline void scale32(__m256i q, __m256 d0, __m256 d1, __m256 m, float* out) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  const __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int k = 0; k < 4; ++k) {
    __m256 v = _mm256_mul_ps(k < 2 ? d0 : d1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part[k])));
    if constexpr (kMinus) v = _mm256_sub_ps(v, m);
    _mm256_storeu_ps(out + 8 * k, v);
  }
}
inline void scale32(__m256i q, __m256 d, float* out) { scale32<false>(q, d, d, d, out); }

// Q4_0 / Q5_0: d·(q − 8 or 16); Q4_1 / Q5_1: d·q + m.
template <typename Block, bool kFive, bool kAffine>
void to_f32_q4q5(const uint8_t* w, int cols, float* out) {
  for (int i = 0; i < cols / kQ8; ++i, out += kQ8) {
    const uint8_t* blk = w + i * sizeof(Block);
    uint16_t d16;
    std::memcpy(&d16, blk, 2);
    const __m256 d = _mm256_set1_ps(h2f(d16));
    __m256i q = unpack_nibbles(blk + offsetof(Block, qs));
    if constexpr (kFive) q = _mm256_or_si256(q, fifth_bits(blk + offsetof(Block, qh)));
    if constexpr (kAffine) {
      uint16_t m16;
      std::memcpy(&m16, blk + 2, 2);
      // d·q + m is d·q − (−m): negating m is exact.
      scale32<true>(q, d, d, _mm256_set1_ps(-h2f(m16)), out);
    } else {
      scale32(_mm256_sub_epi8(q, _mm256_set1_epi8(kFive ? 16 : 8)), d, out);
    }
  }
}

void to_f32_q8_0(const uint8_t* w, int cols, float* out) {
  for (int i = 0; i < cols / kQ8; ++i, out += kQ8) {
    const uint8_t* blk = w + i * sizeof(b::Q8_0);
    uint16_t d16;
    std::memcpy(&d16, blk, 2);
    scale32(load256(blk + 2), _mm256_set1_ps(h2f(d16)), out);
  }
}

// Q4_K / Q5_K: sub-block j is (d·sc_j)·q − dmin·m_j, as the reference's pair_scales.
template <bool kFive>
void to_f32_k45(const uint8_t* w, int cols, float* out) {
  using Block = std::conditional_t<kFive, b::Q5_K, b::Q4_K>;
  for (int i = 0; i < cols / kQ8K; ++i) {
    const uint8_t* blk = w + i * sizeof(Block);
    uint16_t d16, dmin16;
    std::memcpy(&d16, blk, 2);
    std::memcpy(&dmin16, blk + 2, 2);
    const float d = h2f(d16), dmin = h2f(dmin16);
    const uint8_t* scales = blk + offsetof(Block, scales);
    __m256i hbits = _mm256_setzero_si256();
    if constexpr (kFive) hbits = load256(blk + offsetof(b::Q5_K, qh));
    for (int p = 0; p < 4; ++p, out += 64) {
      __m256i lo, hi;
      unpack_k45_pair<kFive>(blk + offsetof(Block, qs), hbits, p, lo, hi);
      int sc, m;
      b::scale_min_k4(2 * p, scales, sc, m);
      const __m256 d_lo = _mm256_set1_ps(d * static_cast<float>(sc)), m_lo = _mm256_set1_ps(dmin * static_cast<float>(m));
      b::scale_min_k4(2 * p + 1, scales, sc, m);
      const __m256 d_hi = _mm256_set1_ps(d * static_cast<float>(sc)), m_hi = _mm256_set1_ps(dmin * static_cast<float>(m));
      scale32<true>(lo, d_lo, d_lo, m_lo, out);
      scale32<true>(hi, d_hi, d_hi, m_hi, out + 32);
    }
  }
}

// Q6_K: (d·sc_k)·(q − 32), sub-block k of 16 elements.
void to_f32_q6_k(const uint8_t* w, int cols, float* out) {
  for (int i = 0; i < cols / kQ8K; ++i) {
    const uint8_t* blk = w + i * sizeof(b::Q6_K);
    const auto* sc = reinterpret_cast<const int8_t*>(blk + offsetof(b::Q6_K, scales));
    uint16_t d16;
    std::memcpy(&d16, blk + offsetof(b::Q6_K, d), 2);
    const float d = h2f(d16);
    for (int half = 0; half < 2; ++half) {
      __m256i q[4];
      unpack_q6_k_half(blk, half, q);
      for (int r = 0; r < 4; ++r, out += 32) {
        const int k = 8 * half + 2 * r;
        scale32<false>(_mm256_sub_epi8(q[r], _mm256_set1_epi8(32)), _mm256_set1_ps(d * static_cast<float>(sc[k])),
                       _mm256_set1_ps(d * static_cast<float>(sc[k + 1])), _mm256_setzero_ps(), out);
      }
    }
  }
}

const ToF32Table& simd_to_f32() {
  static const ToF32Table t{to_f32_q4q5<b::Q4_0, false, false>,
                            to_f32_q4q5<b::Q4_1, false, true>,
                            to_f32_q4q5<b::Q5_0, true, false>,
                            to_f32_q4q5<b::Q5_1, true, true>,
                            to_f32_q8_0,
                            to_f32_k45<false>,
                            to_f32_k45<true>,
                            to_f32_q6_k};
  return t;
}

}  // namespace
}  // namespace tq::model::qk
