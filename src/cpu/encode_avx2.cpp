// Quantize-on-write with 8 lanes (AVX2 + FMA + F16C): the lane encoder of encode_lanes.h
// over ymm registers; fp16 through vcvtps2ph, rounding through vroundps.
#include "encode.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "encode_lanes.h"

namespace tq::detail {

namespace {

struct Avx2 : lanes::Types<8> {
  static void widen(F x, DH* d) {
    d[0] = DH(_mm256_cvtps_pd(_mm256_castps256_ps128(__m256(x))));
    d[1] = DH(_mm256_cvtps_pd(_mm256_extractf128_ps(__m256(x), 1)));
  }
  static constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  static F nearbyint(F x) { return F(_mm256_round_ps(__m256(x), kNearest)); }
  static I half_bits(F x) { return I(_mm256_cvtepu16_epi32(_mm256_cvtps_ph(__m256(x), kNearest))); }
  static F round_to_half(F x) { return F(_mm256_cvtph_ps(_mm256_cvtps_ph(__m256(x), kNearest))); }

  // 8 x 8: 4 x 4 transposes inside both 128-bit halves (rows 4g..4g+3), then the halves.
  static void transpose(const float* const* rows, int j, F* t) {
    __m256 a[4][2];  // a[c][g] half L: rows 4g..4g+3 of column 4L + c
    for (int g = 0; g < 2; ++g) {
      const __m256 r0 = _mm256_loadu_ps(rows[4 * g] + j), r1 = _mm256_loadu_ps(rows[4 * g + 1] + j);
      const __m256 r2 = _mm256_loadu_ps(rows[4 * g + 2] + j), r3 = _mm256_loadu_ps(rows[4 * g + 3] + j);
      const __m256d t0 = _mm256_castps_pd(_mm256_unpacklo_ps(r0, r1)), t1 = _mm256_castps_pd(_mm256_unpackhi_ps(r0, r1));
      const __m256d t2 = _mm256_castps_pd(_mm256_unpacklo_ps(r2, r3)), t3 = _mm256_castps_pd(_mm256_unpackhi_ps(r2, r3));
      a[0][g] = _mm256_castpd_ps(_mm256_unpacklo_pd(t0, t2));
      a[1][g] = _mm256_castpd_ps(_mm256_unpackhi_pd(t0, t2));
      a[2][g] = _mm256_castpd_ps(_mm256_unpacklo_pd(t1, t3));
      a[3][g] = _mm256_castpd_ps(_mm256_unpackhi_pd(t1, t3));
    }
    for (int c = 0; c < 4; ++c) {
      t[c] = F(_mm256_permute2f128_ps(a[c][0], a[c][1], 0x20));
      t[4 + c] = F(_mm256_permute2f128_ps(a[c][0], a[c][1], 0x31));
    }
  }
};

}  // namespace

std::unique_ptr<RecordEncoder> make_avx2_record_encoder(const Codec& codec) { return lanes::make<Avx2>(codec); }

}  // namespace tq::detail

#else

namespace tq::detail {
std::unique_ptr<RecordEncoder> make_avx2_record_encoder(const Codec&) { return nullptr; }
}  // namespace tq::detail

#endif
