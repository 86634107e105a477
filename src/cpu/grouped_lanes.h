#pragma once
// Grouped (calibrated) keys on AVX-512 with lanes = records, as turbo3's keys
// (kernels_avx512.cpp MseSeg::token_lanes): 16 records are scored at once, run by run.
// A run's codes are one bit stream from a byte, so per G codes (16 of <= 4 bits, 8 of
// 5-8) two 8-record vpgatherdq fetch each record's 64-bit window, two blends make 32-bit
// windows of G/2 codes each, and per code one shift, one lookup (a vpermps, a
// vpermt2ps, two of them and a blend, or a gather for 7-8 bits) and one FMA per row
// against the broadcast query coordinate. A run's sums are scaled by its 16 norms at
// once; no horizontal sums (the chunk kernel of grouped_vbmi.h needs one per record).
// Included only by grouped_vbmi.h.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "grouped_layout.h"

namespace tq::detail::vbmi {

// Lane i: the norm whose log byte is the low byte of lane i of `bytes` (frac: lane f = 2^(f/16)).
inline __m512 log_norms(__m512i bytes, __m512 frac) {
  const __m512i c = _mm512_and_si512(bytes, _mm512_set1_epi32(0xFF));
  const __m512 e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(c, 4), _mm512_set1_epi32(8)));
  return _mm512_maskz_scalef_ps(_mm512_test_epi32_mask(c, c), _mm512_permutexvar_ps(c, frac), e);  // code 0: 0
}

// Lane i: the fp16 norm in the low 16 bits of lane i of `bytes`.
inline __m512 half_norms(__m512i bytes) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(bytes)); }

// Codes per pair of 64-bit gathers: 16 of <= 4 bits, 8 of 5-8.
constexpr int lane_group(int bits) { return bits <= 4 ? 16 : 8; }

// A coded run's geometry and levels in registers' form (every table repeats every 2^bits
// entries, so the bits above a code select the same level).
struct LaneRun {
  int begin, size, bits;
  bool log_norm;
  int norm_offset, code_offset;
  int norm_shift = -1;  // >= 0: the norm's bits start there in the previous run's last gathers
  __m512 t[4];  // the levels, 64 entries
  const float* levels;
  explicit LaneRun(const GroupedRun& r)
      : begin(r.begin), size(r.size), bits(r.bits), log_norm(r.log_norm), norm_offset(static_cast<int>(r.norm_offset)),
        code_offset(static_cast<int>(r.code_offset)),
        levels(r.levels.data()) {
    alignas(64) float lv[64];
    for (int i = 0; i < 64; ++i) lv[i] = r.levels[i % r.levels.size()];
    for (int k = 0; k < 4; ++k) t[k] = _mm512_load_ps(lv + 16 * k);
  }
  // The norm bytes follow the previous run's codes: often inside its last 64-bit gathers.
  void follow(const LaneRun& prev) {
    const int G = lane_group(prev.bits), last = prev.code_offset + prev.bits * ((prev.size - 1) / G * G) / 8;
    if (norm_offset >= last && norm_offset + (log_norm ? 1 : 2) <= last + 8) norm_shift = 8 * (norm_offset - last);
  }
  template <int B>
  __m512 level(__m512i code) const {
    if constexpr (B <= 4) return _mm512_permutexvar_ps(code, t[0]);
    if constexpr (B == 5) return _mm512_permutex2var_ps(t[0], code, t[1]);
    if constexpr (B == 6)
      return _mm512_mask_blend_ps(_mm512_test_epi32_mask(code, _mm512_set1_epi32(32)),
                                  _mm512_permutex2var_ps(t[0], code, t[1]), _mm512_permutex2var_ps(t[2], code, t[3]));
    if constexpr (B >= 7) return _mm512_i32gather_ps(_mm512_and_si512(code, _mm512_set1_epi32((1 << B) - 1)), levels, 4);
  }
};

// a[r][0..1] += row r's products with codes [i0, i0 + n) of the run (n <= G), 16 records
// from recs (lane 2i: record i, lane 2i+1: record 8+i); q: the rows in coordinate order;
// g: the two gathers, kept for the next run's norms.
template <int RB, int B>
[[gnu::always_inline]] inline void lanes_codes(const LaneRun& run, int i0, int n, const float* q, size_t qs,
                                               const uint8_t* recs, size_t rec, __m256i idx, __m512 (*a)[2],
                                               __m512i* g) {
  constexpr int G = lane_group(B), H = G / 2, X = B * H;  // X: the second window's first bit
  const uint8_t* p = recs + run.code_offset + B * i0 / 8;
  const __m512i g0 = g[0] = _mm512_i32gather_epi64(idx, p, 1), g1 = g[1] = _mm512_i32gather_epi64(idx, p + 8 * rec, 1);
  const __m512i win[2] = {_mm512_mask_blend_epi32(0xAAAA, g0, _mm512_slli_epi64(g1, 32)),
                          _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(g0, X), _mm512_slli_epi64(g1, 32 - X))};
  const float* qc = q + run.begin + i0;
  auto code = [&](int m) [[gnu::always_inline]] {
    const __m512 y = run.level<B>(_mm512_srli_epi32(win[m / H], B * (m % H)));
    for (int r = 0; r < RB; ++r) a[r][m & 1] = _mm512_fmadd_ps(_mm512_set1_ps(qc[qs * r + m]), y, a[r][m & 1]);
  };
  // Unrolled with constant m even when n < G, so a[][] stays in registers; whole groups
  // without the guards.
  if (n == G) {
#pragma GCC unroll 16
    for (int m = 0; m < G; ++m) code(m);
  } else {
#pragma GCC unroll 16
    for (int m = 0; m < G; ++m)
      if (m < n) code(m);
  }
}

// sum[r] += norm * (row r's dot product with the run's codes), 16 records; g: the last
// gathers (records 0-7, 8-15).
template <int RB, int B>
[[gnu::always_inline]] inline void lanes_run(const LaneRun& run, const float* q, size_t qs, const uint8_t* recs,
                                             size_t rec, __m256i idx, __m512 norm, __m512* sum, __m512i* g) {
  constexpr int G = lane_group(B);
  __m512 a[RB][2];  // two chains per row: even and odd codes
  for (int r = 0; r < RB; ++r) a[r][0] = a[r][1] = _mm512_setzero_ps();
  for (int i0 = 0; i0 < run.size; i0 += G)
    lanes_codes<RB, B>(run, i0, std::min(G, run.size - i0), q, qs, recs, rec, idx, a, g);
  for (int r = 0; r < RB; ++r) sum[r] = _mm512_fmadd_ps(_mm512_add_ps(a[r][0], a[r][1]), norm, sum[r]);
}

// Lane 2i: bits [s, s + 32) of qword i of g[0]; lane 2i+1: of g[1].
inline __m512i window(const __m512i* g, int s) {
  const __m512i hi = s <= 32 ? _mm512_sllv_epi64(g[1], _mm512_set1_epi64(32 - s))
                              : _mm512_srlv_epi64(g[1], _mm512_set1_epi64(s - 32));
  return _mm512_mask_blend_epi32(0xAAAA, _mm512_srlv_epi64(g[0], _mm512_set1_epi64(s)), hi);
}

// scores[r][i] (row stride ss) = <row r, record i>, i < 16, before the constant q·μ. A
// run's 16 norms come from the previous run's last gathers, else from one gather of the
// records' norm bytes (frac: as log_norms').
template <int RB>
void lanes_score16(const std::vector<LaneRun>& runs, __m512 frac, const float* q, size_t qs, const uint8_t* recs,
                   size_t rec, float* scores, size_t ss) {
  const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(rec)));
  const __m512i order = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  // Lane 2i reads record i's norm, lane 2i+1 record 8+i's.
  const __m512i nidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15),
                                          _mm512_set1_epi32(static_cast<int>(rec)));
  __m512 sum[RB];
  for (int r = 0; r < RB; ++r) sum[r] = _mm512_setzero_ps();
  __m512i g[2];
  for (const LaneRun& run : runs) {
    const __m512i nb = run.norm_shift >= 0 ? window(g, run.norm_shift) : _mm512_i32gather_epi32(nidx, recs + run.norm_offset, 1);
    const __m512 n = run.log_norm ? log_norms(nb, frac) : half_norms(nb);
    switch (run.bits) {
      case 1: lanes_run<RB, 1>(run, q, qs, recs, rec, idx, n, sum, g); break;
      case 2: lanes_run<RB, 2>(run, q, qs, recs, rec, idx, n, sum, g); break;
      case 3: lanes_run<RB, 3>(run, q, qs, recs, rec, idx, n, sum, g); break;
      case 4: lanes_run<RB, 4>(run, q, qs, recs, rec, idx, n, sum, g); break;
      case 5: lanes_run<RB, 5>(run, q, qs, recs, rec, idx, n, sum, g); break;
      case 6: lanes_run<RB, 6>(run, q, qs, recs, rec, idx, n, sum, g); break;
      case 7: lanes_run<RB, 7>(run, q, qs, recs, rec, idx, n, sum, g); break;
      default: lanes_run<RB, 8>(run, q, qs, recs, rec, idx, n, sum, g); break;
    }
  }
  for (int r = 0; r < RB; ++r) _mm512_storeu_ps(scores + ss * r, _mm512_permutexvar_ps(order, sum[r]));
}

}  // namespace tq::detail::vbmi
