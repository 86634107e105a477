#pragma once
// The SIMD row kernels on 256-bit vectors, included by qmatmul_avx2.cpp (kVnni = false:
// u8×s8 products through vpmaddubsw + vpmaddwd) and qmatmul_avx512.cpp (kVnni = true:
// vpdpbusd, AVX-512 VNNI on 256-bit registers, which also lifts the 16-bit intermediate).
// Weight codes are unpacked to unsigned bytes (the 4/5/6-bit types) and multiplied with
// the signed 8-bit activations; Q8_0 applies the weight's sign to the activation instead.
// Everything is in an unnamed namespace: each including file compiles it for its own ISA.
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "ggml_types.h"
#include "qmatmul_kernels.h"

namespace tq::model::qk {
namespace {

namespace b = gguf::blocks;

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Σ u·s over groups of 4 bytes into 8 i32 lanes (u unsigned, s signed; |u·s| pairs fit i16
// for every caller: u <= 63 or, for Q8_0, |u| <= 128 with |s| <= 127).
template <bool kVnni>
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  if constexpr (kVnni) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
  } else {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
}

// As dot_u8s8 times a per-128-bit-half integer scale (the K-quants' sub-block scales):
// sc16 holds the scale in every i16 lane of its half, sc32 in every i32 lane.
template <bool kVnni>
inline __m256i dot_u8s8_scaled(__m256i u, __m256i s, __m256i sc16, __m256i sc32) {
  if constexpr (kVnni) {
    return _mm256_mullo_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s), sc32);
  } else {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc16);
  }
}

inline __m256i scales16(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(hi)), _mm_set1_epi16(static_cast<short>(lo)));
}
inline __m256i scales32(int lo, int hi) { return _mm256_set_m128i(_mm_set1_epi32(hi), _mm_set1_epi32(lo)); }

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Decode streams each weight byte once from memory. Prefetching kPrefetchAhead bytes ahead
// of the block being multiplied (every 64-byte line of it) made the Gemma 3 output matrix
// (262144 x 640 Q8_0, 178 MB) 1.4-1.5x faster single-threaded (measured 256 B: 1.0x,
// 1 KiB: 1.2x, 2 KiB on a plateau up to 16 KiB); the hardware prefetcher alone stops at
// each 4 KiB page. Past the end of the matrix it only touches lines never used.
constexpr int kPrefetchAhead = 4096;
template <int kBytes>
inline void prefetch_weights(const uint8_t* p) {
  for (int o = 0; o < kBytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchAhead + o, _MM_HINT_T0);
}

// 16 bytes of nibbles to 32 codes in element order: low nibbles (0..15), then high (16..31).
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

// Bit j of the little-endian u32 at qh as 0x10 in byte j (Q5_0/Q5_1's fifth bit).
inline __m256i fifth_bits(const uint8_t* qh) {
  uint32_t x;
  std::memcpy(&x, qh, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(x)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
  // Each byte keeps only its own bit; all ones where that bit was set.
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// The 32-element types: acc += (dw·dx)·Σ q·xq per block, plus a scalar offset term
// (−8·dw·sx for Q4_0, −16·dw·sx for Q5_0, m·sx for Q4_1/Q5_1).
// One block of dot_q4q5: acc += (dw·dx)·Σ q·xq, offset += the block's offset term.
template <bool kVnni, typename Block, bool kFive, bool kAffine>
inline void q4q5_block(const uint8_t* blk, const Q8Block& x, __m256& acc, float& offset) {
  uint16_t d16;
  std::memcpy(&d16, blk, 2);
  const float dw = h2f(d16);
  __m256i q = unpack_nibbles(blk + offsetof(Block, qs));
  if constexpr (kFive) q = _mm256_or_si256(q, fifth_bits(blk + offsetof(Block, qh)));
  const __m256i p = dot_u8s8<kVnni>(q, load256(x.qs));
  acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * x.d), _mm256_cvtepi32_ps(p), acc);
  if constexpr (kAffine) {
    uint16_t m16;
    std::memcpy(&m16, blk + 2, 2);
    offset += h2f(m16) * x.s;
  } else {
    offset -= (kFive ? 16.0f : 8.0f) * dw * x.s;
  }
}

// The 32-element types: acc += (dw·dx)·Σ q·xq per block, plus a scalar offset term
// (−8·dw·sx for Q4_0, −16·dw·sx for Q5_0, m·sx for Q4_1/Q5_1). Two blocks per step
// into two accumulators, so consecutive blocks do not wait on each other's FMA.
template <bool kVnni, typename Block, bool kFive, bool kAffine>
float dot_q4q5(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const Q8Block*>(xv);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float off0 = 0.0f, off1 = 0.0f;
  const int nb = cols / kQ8;
  int i = 0;
  for (; i + 2 <= nb; i += 2) {
    prefetch_weights<2 * sizeof(Block)>(w + i * sizeof(Block));
    q4q5_block<kVnni, Block, kFive, kAffine>(w + i * sizeof(Block), x[i], acc0, off0);
    q4q5_block<kVnni, Block, kFive, kAffine>(w + (i + 1) * sizeof(Block), x[i + 1], acc1, off1);
  }
  if (i < nb) q4q5_block<kVnni, Block, kFive, kAffine>(w + i * sizeof(Block), x[i], acc0, off0);
  return hsum(_mm256_add_ps(acc0, acc1)) + (off0 + off1);
}

template <bool kVnni>
inline void q8_0_block(const uint8_t* blk, const Q8Block& x, __m256& acc) {
  uint16_t d16;
  std::memcpy(&d16, blk, 2);
  const __m256i wq = load256(blk + 2);
  // |w| (128 for −128, read unsigned) times x with w's sign.
  const __m256i p = dot_u8s8<kVnni>(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(load256(x.qs), wq));
  acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(d16) * x.d), _mm256_cvtepi32_ps(p), acc);
}

template <bool kVnni>
float dot_q8_0(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const Q8Block*>(xv);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int nb = cols / kQ8;
  int i = 0;
  for (; i + 2 <= nb; i += 2) {
    prefetch_weights<2 * sizeof(b::Q8_0)>(w + i * sizeof(b::Q8_0));
    q8_0_block<kVnni>(w + i * sizeof(b::Q8_0), x[i], acc0);
    q8_0_block<kVnni>(w + (i + 1) * sizeof(b::Q8_0), x[i + 1], acc1);
  }
  if (i < nb) q8_0_block<kVnni>(w + i * sizeof(b::Q8_0), x[i], acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

// Sub-blocks 2p (lo) and 2p+1 (hi) of a Q4_K / Q5_K block as codes 0..15 (0..31 with
// Q5_K's fifth bits from hbits, the block's 32 bytes of qh).
template <bool kFive>
inline void unpack_k45_pair(const uint8_t* qs, __m256i hbits, int p, __m256i& lo, __m256i& hi) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i q = load256(qs + 32 * p);
  lo = _mm256_and_si256(q, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
  if constexpr (kFive) {
    const __m256i one = _mm256_set1_epi8(1);
    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * p), one), 4));
    hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * p + 1), one), 4));
  }
}

// Q4_K / Q5_K: sub-blocks 2p (low nibbles of qs[32p..]) and 2p+1 (high nibbles), 32 each;
// Q5_K's fifth bit of sub-block j, element l, is bit j of qh[l].
template <bool kVnni, bool kFive>
float dot_k45(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const Q8KBlock*>(xv);
  using Block = std::conditional_t<kFive, b::Q5_K, b::Q4_K>;
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int i = 0; i < cols / kQ8K; ++i) {
    const uint8_t* blk = w + i * sizeof(Block);
    prefetch_weights<sizeof(Block)>(blk);
    uint16_t d16, dmin16;
    std::memcpy(&d16, blk, 2);
    std::memcpy(&dmin16, blk + 2, 2);
    const uint8_t* scales = blk + offsetof(Block, scales);
    const uint8_t* qs = blk + offsetof(Block, qs);
    int sc[8], msum = 0;
    for (int j = 0; j < 8; ++j) {
      int m;
      b::scale_min_k4(j, scales, sc[j], m);
      msum += m * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
    }
    __m256i hbits = _mm256_setzero_si256();
    if constexpr (kFive) hbits = load256(blk + offsetof(b::Q5_K, qh));
    __m256i isum = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      __m256i lo, hi;
      unpack_k45_pair<kFive>(qs, hbits, p, lo, hi);
      const int8_t* xq = x[i].qs + 64 * p;
      const int s0 = sc[2 * p], s1 = sc[2 * p + 1];
      isum = _mm256_add_epi32(isum, dot_u8s8_scaled<kVnni>(lo, load256(xq), scales16(s0, s0), scales32(s0, s0)));
      isum = _mm256_add_epi32(isum, dot_u8s8_scaled<kVnni>(hi, load256(xq + 32), scales16(s1, s1), scales32(s1, s1)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(d16) * x[i].d), _mm256_cvtepi32_ps(isum), acc);
    mins += h2f(dmin16) * x[i].d * static_cast<float>(msum);
  }
  return hsum(acc) - mins;
}

// Half `half` of a Q6_K block as 4 runs of 32 codes 0..63 (elements 128·half + 32r + l):
// low 4 bits from ql (64 bytes: runs 0/1 low nibbles, 2/3 high), top 2 from qh (32 bytes,
// run r at bits 2r).
inline void unpack_q6_k_half(const uint8_t* blk, int half, __m256i q[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3);
  const uint8_t* ql = blk + offsetof(b::Q6_K, ql) + 64 * half;
  const __m256i l0 = load256(ql), l1 = load256(ql + 32);
  const __m256i h = load256(blk + offsetof(b::Q6_K, qh) + 32 * half);
  q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
  q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
}

// Q6_K: per half of 128, ql (64 bytes) and qh (32) give 4 runs of 32 codes in 0..63, each
// run two sub-blocks of 16 (one per 128-bit half of the register) with their own scale.
template <bool kVnni>
float dot_q6_k(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const Q8KBlock*>(xv);
  __m256 acc = _mm256_setzero_ps();
  float offsets = 0.0f;
  for (int i = 0; i < cols / kQ8K; ++i) {
    const uint8_t* blk = w + i * sizeof(b::Q6_K);
    prefetch_weights<sizeof(b::Q6_K)>(blk);
    const auto* scales = reinterpret_cast<const int8_t*>(blk + offsetof(b::Q6_K, scales));
    uint16_t d16;
    std::memcpy(&d16, blk + offsetof(b::Q6_K, d), 2);
    int offset = 0;  // Σ_k sc_k · 32 · Σxq over sub-block k
    for (int k = 0; k < 16; ++k) offset += scales[k] * x[i].bsums[k];
    __m256i isum = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      __m256i q[4];
      unpack_q6_k_half(blk, half, q);
      const int8_t* sc = scales + 8 * half;
      const int8_t* xq = x[i].qs + 128 * half;
      for (int r = 0; r < 4; ++r) {
        const int s0 = sc[2 * r], s1 = sc[2 * r + 1];
        isum = _mm256_add_epi32(
            isum, dot_u8s8_scaled<kVnni>(q[r], load256(xq + 32 * r), scales16(s0, s1), scales32(s0, s1)));
      }
    }
    const float d = h2f(d16) * x[i].d;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
    offsets += d * 32.0f * static_cast<float>(offset);
  }
  return hsum(acc) - offsets;
}

float dot_f16(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const float*>(xv);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int j = 0;
  for (; j + 16 <= cols; j += 16) {
    prefetch_weights<32>(w + 2 * j);
    acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * j))),
                           _mm256_loadu_ps(x + j), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * j + 16))),
                           _mm256_loadu_ps(x + j + 8), acc1);
  }
  float sum = hsum(_mm256_add_ps(acc0, acc1));
  for (; j < cols; ++j) {
    uint16_t h;
    std::memcpy(&h, w + 2 * j, 2);
    sum += h2f(h) * x[j];
  }
  return sum;
}

float dot_bf16(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const float*>(xv);
  __m256 acc = _mm256_setzero_ps();
  int j = 0;
  for (; j + 8 <= cols; j += 8) {
    if (j % 32 == 0) prefetch_weights<64>(w + 2 * j);
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * j)));
    acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_loadu_ps(x + j), acc);
  }
  float sum = hsum(acc);
  for (; j < cols; ++j) {
    const uint32_t bits = static_cast<uint32_t>(w[2 * j] | (w[2 * j + 1] << 8)) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    sum += v * x[j];
  }
  return sum;
}

template <bool kVnni>
const DotTable& simd_dots() {
  static const DotTable t{dot_f16,
                          dot_bf16,
                          dot_q4q5<kVnni, b::Q4_0, false, false>,
                          dot_q4q5<kVnni, b::Q4_1, false, true>,
                          dot_q4q5<kVnni, b::Q5_0, true, false>,
                          dot_q4q5<kVnni, b::Q5_1, true, true>,
                          dot_q8_0<kVnni>,
                          dot_k45<kVnni, false>,
                          dot_k45<kVnni, true>,
                          dot_q6_k<kVnni>};
  return t;
}

}  // namespace
}  // namespace tq::model::qk
