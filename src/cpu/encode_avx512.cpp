// Quantize-on-write with 16 lanes (AVX-512F): the lane encoder of encode_lanes.h over
// zmm registers; fp16 through vcvtps2ph, rounding through vrndscaleps.
#include "encode.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// GCC 12's avx512fintrin.h trips -W(maybe-)uninitialized on its own _mm512_undefined_*.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "encode_lanes.h"

namespace tq::detail {

namespace {

struct Avx512 : lanes::Types<16> {
  static void widen(F x, DH* d) {
    d[0] = DH(_mm512_cvtps_pd(_mm512_castps512_ps256(__m512(x))));
    d[1] = DH(_mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(__m512(x)), 1))));
  }
  static constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  static F nearbyint(F x) { return F(_mm512_roundscale_ps(__m512(x), kNearest)); }
  static I half_bits(F x) { return I(_mm512_cvtepu16_epi32(_mm512_cvtps_ph(__m512(x), kNearest))); }
  static F round_to_half(F x) { return F(_mm512_cvtph_ps(_mm512_cvtps_ph(__m512(x), kNearest))); }

  // 16 x 16: 4 x 4 transposes inside every 128-bit block (rows 4g..4g+3), then a 4 x 4
  // transpose of the blocks themselves.
  static void transpose(const float* const* rows, int j, F* t) {
    __m512 a[4][4];  // a[c][g] block L: rows 4g..4g+3 of column 4L + c
    for (int g = 0; g < 4; ++g) {
      const __m512 r0 = _mm512_loadu_ps(rows[4 * g] + j), r1 = _mm512_loadu_ps(rows[4 * g + 1] + j);
      const __m512 r2 = _mm512_loadu_ps(rows[4 * g + 2] + j), r3 = _mm512_loadu_ps(rows[4 * g + 3] + j);
      const __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(r0, r1)), t1 = _mm512_castps_pd(_mm512_unpackhi_ps(r0, r1));
      const __m512d t2 = _mm512_castps_pd(_mm512_unpacklo_ps(r2, r3)), t3 = _mm512_castps_pd(_mm512_unpackhi_ps(r2, r3));
      a[0][g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
      a[1][g] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
      a[2][g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
      a[3][g] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    for (int c = 0; c < 4; ++c) {
      const __m512 b0 = _mm512_shuffle_f32x4(a[c][0], a[c][1], 0x44), b1 = _mm512_shuffle_f32x4(a[c][0], a[c][1], 0xee);
      const __m512 b2 = _mm512_shuffle_f32x4(a[c][2], a[c][3], 0x44), b3 = _mm512_shuffle_f32x4(a[c][2], a[c][3], 0xee);
      t[c] = F(_mm512_shuffle_f32x4(b0, b2, 0x88));
      t[4 + c] = F(_mm512_shuffle_f32x4(b0, b2, 0xdd));
      t[8 + c] = F(_mm512_shuffle_f32x4(b1, b3, 0x88));
      t[12 + c] = F(_mm512_shuffle_f32x4(b1, b3, 0xdd));
    }
  }
};

}  // namespace

std::unique_ptr<RecordEncoder> make_avx512_record_encoder(const Codec& codec) {
  return lanes::make<Avx512>(codec);
}

}  // namespace tq::detail

#else

namespace tq::detail {
std::unique_ptr<RecordEncoder> make_avx512_record_encoder(const Codec&) { return nullptr; }
}  // namespace tq::detail

#endif
