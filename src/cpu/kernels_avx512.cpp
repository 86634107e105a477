// AVX-512 kernels (16 lanes): the same segment decoders as kernels_avx2.cpp at twice the
// width, so each record costs half the instructions. One vpermps holds a whole 4-bit
// codebook (16 levels), so every mse width is one permute per 16 coordinates. With
// AVX512-VBMI the 16 codes of a chunk come out of one vpmultishiftqb (each lane picks its
// own bit offset from the broadcast 64-bit word); without it, two 32-bit broadcasts and a
// per-lane shift do the same. Grouped records run in grouped_vbmi.h's packed chunks
// with VBMI (small runs share chunks; whole chunks of <= 4 bits by vpmultishiftqb), else in grouped_simd.h's chunk space: codes by a
// byte shuffle (any width), levels by one vpermps (<= 4 bits), two-table vpermt2ps (5-6
// bits) or a gather (7-8 bits).
#include "kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// GCC 12's avx512fintrin.h trips -Wmaybe-uninitialized (and, in grouped_lanes.h,
// -Wuninitialized) on its own _mm512_undefined_*.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "grouped_simd.h"
#if defined(__AVX512VBMI__)
#include "grouped_vbmi.h"
#endif
#include "kernels_simd.h"
#include "turboquant/quantizers.h"

namespace tq::detail {

bool avx512_compiled() { return true; }

namespace {

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

struct V16 {
  using T = __m512;
  static constexpr int kWidth = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static float hsum(T v) { return _mm512_reduce_add_ps(v); }
  // out[i] = hsum(a[i]), i < 4: the four reductions share their shuffles.
  static void hsum4(const T* a, float* out) {
    const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a[0], a[1]), _mm512_unpackhi_ps(a[0], a[1]));
    const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a[2], a[3]), _mm512_unpackhi_ps(a[2], a[3]));
    const __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, 0x44), _mm512_shuffle_ps(t0, t1, 0xEE));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u), _mm512_extractf32x8_ps(u, 1));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
  // Lane i of the result = hsum(a[i]), i < 16: a transposing add tree, 45 shuffles and
  // adds for 16 sums where 16 separate reductions take about 130.
  static T transpose_sum(const T* a) {
    __m512 p[8], q[4];
    for (int i = 0; i < 8; ++i)
      p[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; ++i)  // 128-bit block b of q[i]: block b's partial sums of a[4i .. 4i+3]
      q[i] = _mm512_add_ps(_mm512_shuffle_ps(p[2 * i], p[2 * i + 1], 0x44), _mm512_shuffle_ps(p[2 * i], p[2 * i + 1], 0xEE));
    const __m512 r0 = _mm512_add_ps(_mm512_shuffle_f32x4(q[0], q[1], 0x88), _mm512_shuffle_f32x4(q[0], q[1], 0xDD));
    const __m512 r1 = _mm512_add_ps(_mm512_shuffle_f32x4(q[2], q[3], 0x88), _mm512_shuffle_f32x4(q[2], q[3], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(r0, r1, 0x88), _mm512_shuffle_f32x4(r0, r1, 0xDD));
  }
};

// Lane l of the result: bits [b*l, b*l + b) of the little-endian bytes at p (b <= 4, so
// the 16 codes lie in the first 8 bytes).
struct CodeUnpacker16 {
  __m512i ctrl, mask;
  int bits;
  explicit CodeUnpacker16(int b) : mask(_mm512_set1_epi32((1 << b) - 1)), bits(b) {
#if defined(__AVX512VBMI__)
    alignas(64) int64_t c[8];
    for (int j = 0; j < 8; ++j) c[j] = int64_t(b * 2 * j) | (int64_t(b * (2 * j + 1)) << 32);
    ctrl = _mm512_load_si512(c);
#else
    alignas(64) int32_t c[16];
    for (int l = 0; l < 16; ++l) c[l] = b * (l % 8);
    ctrl = _mm512_load_si512(c);
#endif
  }
  __m512i operator()(const uint8_t* p) const { return _mm512_and_si512(unmasked(p), mask); }
  // The code in the low `bits` of each lane, higher bits left as they come: enough for a
  // permute over a table that repeats every 2^bits entries.
  __m512i unmasked(const uint8_t* p) const {
#if defined(__AVX512VBMI__)
    int64_t w;
    std::memcpy(&w, p, 8);
    return _mm512_multishift_epi64_epi8(ctrl, _mm512_set1_epi64(w));
#else
    int32_t lo, hi;  // codes 0-7 start at bit 0 of p, codes 8-15 at bit 0 of p + bits
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + bits, 4);
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(lo)), _mm256_set1_epi32(hi), 1);
    return _mm512_srlv_epi32(v, ctrl);
#endif
  }
};

struct SegBase {
  using V = V16;
  int c0, nc;
  static float norm(const uint8_t* rec) { return half_at(rec); }
  // out[t] = norm(recs + rec * t), t < T: the halves gathered as integers and converted 16
  // at a time (one vcvtph2ps per token cost as much as the value decode at head_dim 64).
  static void norms(const uint8_t* recs, size_t rec, int T, float* out) {
    alignas(32) uint16_t h[16];
    int t = 0;
    for (; t + 16 <= T; t += 16) {
      for (int i = 0; i < 16; ++i) std::memcpy(&h[i], recs + rec * (t + i), 2);
      _mm512_storeu_ps(out + t, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h))));
    }
    for (; t < T; ++t) out[t] = half_at(recs + rec * t);
  }
};

struct F16Seg : SegBase {
  __m512 load(const uint8_t* rec, int k) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 32 * k)));
  }
};

struct MseSeg : SegBase {
  size_t offset;
  int bits;
  CodeUnpacker16 unpack;
  __m512 levels;
  MseSeg(int c0_, int nc_, size_t off, const Codebook& cb)
      : SegBase{c0_, nc_}, offset(off), bits(cb.bits), unpack(cb.bits) {
    // The table repeats every 2^bits entries, so vpermps (index bits 0-3) needs no mask.
    alignas(64) float lv[16];
    for (size_t i = 0; i < 16; ++i) lv[i] = cb.levels[i % cb.levels.size()];
    levels = _mm512_load_ps(lv);
  }
  __m512 load(const uint8_t* rec, int k) const {
    return _mm512_permutexvar_ps(unpack.unmasked(rec + offset + static_cast<size_t>(k) * 2 * bits), levels);
  }
  // Keys, 16 records at a time with lanes = records: per 16 coordinates (2B bytes) two
  // 8-record gathers of a 64-bit window, then per coordinate a shift, a vpermps and one
  // FMA per row against the broadcast query coordinate. The record-major form (load
  // above) needs 16-way horizontal sums, whose shuffles and spills cost as much as the
  // FMAs; 64-bit gathers fetch half the elements of 32-bit ones (decode16k: the gather
  // stalls were 42% of the keys' time with 32-bit gathers).
  static constexpr bool kTokenLanes = true;
  template <int RB, int NC>
  void token_lanes(const float* states, size_t sf, const uint8_t* recs, size_t rec, __m512* sum) const {
    switch (bits) {
      case 1: return token_lanes_b<RB, NC, 1>(states, sf, recs, rec, sum);
      case 2: return token_lanes_b<RB, NC, 2>(states, sf, recs, rec, sum);
      case 3: return token_lanes_b<RB, NC, 3>(states, sf, recs, rec, sum);
      default: return token_lanes_b<RB, NC, 4>(states, sf, recs, rec, sum);
    }
  }
  // Lane 2i holds record i, lane 2i+1 record 8+i (each 64-bit lane of the gathers is one
  // record); the sums are put back in record order at the end.
  template <int RB, int NC, int B>
  void token_lanes_b(const float* states, size_t sf, const uint8_t* recs, size_t rec, __m512* sum) const {
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(rec)));
    __m512 a[RB][2];  // two chains per row: even and odd coordinates
    for (int r = 0; r < RB; ++r) a[r][0] = a[r][1] = _mm512_setzero_ps();
    const uint8_t* codes = recs + offset;
    for (int h = 0; h < NC; ++h) {  // coordinates 16h .. 16h+15: 2B bytes at offset 2B*h
      const __m512i g0 = _mm512_i32gather_epi64(idx, codes + 2 * B * h, 1);
      const __m512i g1 = _mm512_i32gather_epi64(idx, codes + 2 * B * h + 8 * rec, 1);
      // Per 8 coordinates a 32-bit window of each record: bits [0, 32) and [8B, 8B + 32).
      const __m512i win[2] = {_mm512_mask_blend_epi32(0xAAAA, g0, _mm512_slli_epi64(g1, 32)),
                              _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(g0, 8 * B), _mm512_slli_epi64(g1, 32 - 8 * B))};
      for (int half = 0; half < 2; ++half)
#pragma GCC unroll 8
        for (int m = 0; m < 8; ++m) {
          // Bits above the code are the next code's (or the next bytes'): vpermps reads 4
          // index bits and the table repeats every 2^B entries.
          const __m512 y = _mm512_permutexvar_ps(_mm512_srli_epi32(win[half], B * m), levels);
          const float* q = states + 16 * h + 8 * half + m;
          for (int r = 0; r < RB; ++r) a[r][m & 1] = _mm512_fmadd_ps(_mm512_set1_ps(q[sf * r]), y, a[r][m & 1]);
        }
    }
    const __m512i order = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int r = 0; r < RB; ++r) sum[r] = _mm512_permutexvar_ps(order, _mm512_add_ps(a[r][0], a[r][1]));
  }
};

struct Q8Seg : SegBase {
  __m512 load(const uint8_t* rec, int c) const {
    const uint8_t* blk = rec + 34 * (c >> 1);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 + 16 * (c & 1)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(half_at(blk)));
  }
};

struct Q4Seg : SegBase {
  __m512 load(const uint8_t* rec, int c) const {
    const uint8_t* blk = rec + 18 * (c >> 1);
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
    const __m512i nib = (c & 1) ? _mm512_srli_epi32(b, 4) : _mm512_and_si512(b, _mm512_set1_epi32(15));
    const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(nib, _mm512_set1_epi32(8)));
    return _mm512_mul_ps(v, _mm512_set1_ps(half_at(blk)));
  }
};

struct GroupSeg : SegBase {
  int bits, chunks_per_group;
  size_t group_bytes;
  CodeUnpacker16 unpack;
  GroupSeg(int c0_, int nc_, const GroupQuantizer& gq)
      : SegBase{c0_, nc_}, bits(gq.bits()), chunks_per_group(gq.group() / 16), group_bytes(gq.group_bytes()),
        unpack(gq.bits()) {}
  __m512 load(const uint8_t* rec, int c) const {
    const uint8_t* g = rec + group_bytes * (c / chunks_per_group);
    const __m512 code = _mm512_cvtepi32_ps(unpack(g + 4 + static_cast<size_t>(c % chunks_per_group) * 2 * bits));
    return _mm512_fmadd_ps(code, _mm512_set1_ps(half_at(g + 2)), _mm512_set1_ps(half_at(g)));
  }
};

// Grouped records (grouped_simd.h), 16 coordinates per register.
struct GroupedIsa {
  using V = V16;
  using I = __m512i;
  static float half(const uint8_t* p) { return half_at(p); }
  struct Unpack {
    __m512i shuf, shift;
    explicit Unpack(int bits) {
      alignas(64) uint8_t sh[64];
      alignas(64) int32_t sr[16];
      code_shuffle(bits, 16, sh, sr);
      shuf = _mm512_load_si512(sh);
      shift = _mm512_load_si512(sr);
    }
    __m512i operator()(const uint8_t* p) const {  // 16 codes lie in the first 16 bytes at p
      const __m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      return _mm512_srlv_epi32(_mm512_shuffle_epi8(b, shuf), shift);
    }
  };
  // Kinds: 0 one vpermps (<= 4 bits; narrower tables repeat, so the bits above a code
  // select the same level), 1 one two-table vpermt2ps (5 bits), 2 two of them and a
  // blend on bit 5 (6 bits), 3 a gather (7-8 bits). Permutes read only the index bits
  // they need, so only the gather masks the codes.
  struct Lut {
    static constexpr int kKinds = 4;
    static int kind(int bits) { return bits <= 4 ? 0 : bits <= 6 ? bits - 4 : 3; }
    __m512 lv[4];
    __m512 post;  // kind 3: the norm, applied after the gather
    __m512i mask;
    const float* all;
    Lut(const float* levels, int b)
        : post(_mm512_set1_ps(1.f)), mask(_mm512_set1_epi32((1 << b) - 1)), all(levels) {
      alignas(64) float t[64] = {};
      const int n = 1 << b, span = b <= 4 ? 16 : 64;
      for (int i = 0; i < span && n <= 64; ++i) t[i] = levels[i % n];
      for (int k = 0; k < 4; ++k) lv[k] = _mm512_load_ps(t + 16 * k);
    }
    template <int K>
    Lut with_norm(__m512 n) const {
      Lut s = *this;
      if constexpr (K == 3)
        s.post = n;
      else
        for (int k = 0; k < (K == 0 ? 1 : K == 1 ? 2 : 4); ++k) s.lv[k] = _mm512_mul_ps(lv[k], n);
      return s;
    }
    template <int K>
    __m512 get(__m512i idx) const {
      if constexpr (K == 0) return _mm512_permutexvar_ps(idx, lv[0]);
      if constexpr (K == 1) return _mm512_permutex2var_ps(lv[0], idx, lv[1]);
      if constexpr (K == 2)
        return _mm512_mask_blend_ps(_mm512_test_epi32_mask(idx, _mm512_set1_epi32(32)),
                                    _mm512_permutex2var_ps(lv[0], idx, lv[1]), _mm512_permutex2var_ps(lv[2], idx, lv[3]));
      if constexpr (K == 3) return _mm512_mul_ps(_mm512_i32gather_ps(_mm512_and_si512(idx, mask), all, 4), post);
    }
  };
};

template <template <class> class K, class Base>
std::unique_ptr<Base> make_avx512(const Codec& c) {
  const int D = c.code_dim();
  if (D % 16 != 0) return nullptr;
  const int nc = D / 16;
  simd::Layout L{c.record_bytes(), false, D};
  const Quantizer& q = c.quantizer();
  switch (c.spec().quant) {
    case QuantKind::f16: return std::make_unique<K<F16Seg>>(std::vector<F16Seg>{F16Seg{{0, nc}}}, L);
    case QuantKind::q8_0: return std::make_unique<K<Q8Seg>>(std::vector<Q8Seg>{Q8Seg{{0, nc}}}, L);
    case QuantKind::q4_0: return std::make_unique<K<Q4Seg>>(std::vector<Q4Seg>{Q4Seg{{0, nc}}}, L);
    case QuantKind::group: {
      const auto& gq = static_cast<const GroupQuantizer&>(q);
      if (gq.group() % 16 != 0 || gq.bits() > 4) return nullptr;
      return std::make_unique<K<GroupSeg>>(std::vector<GroupSeg>{GroupSeg(0, nc, gq)}, L);
    }
    case QuantKind::mse: {
      const auto& mq = static_cast<const MseQuantizer&>(q);
      if (mq.n_hi() % 16 != 0 || mq.hi().bits > 4 || mq.lo().bits > 4) return nullptr;
      L.normed = true;
      const int hi_c = mq.n_hi() / 16;
      std::vector<MseSeg> segs{MseSeg(0, hi_c, mq.hi_offset(), mq.hi())};
      if (hi_c < nc) segs.emplace_back(hi_c, nc - hi_c, mq.lo_offset(), mq.lo());
      return std::make_unique<K<MseSeg>>(std::move(segs), L);
    }
    case QuantKind::grouped:
#if defined(__AVX512VBMI__)
      return vbmi::make_packed<Base, V16>(c);
#else
      return simd::make_grouped<Base, GroupedIsa>(c);
#endif
    case QuantKind::prod:
    case QuantKind::fp8: return nullptr;
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<KeyScorer> make_avx512_key_scorer(const Codec& codec) {
  return make_avx512<simd::Scorer, KeyScorer>(codec);
}
std::unique_ptr<ValueAccumulator> make_avx512_value_accumulator(const Codec& codec) {
  return make_avx512<simd::Accumulator, ValueAccumulator>(codec);
}

}  // namespace tq::detail

#else  // no AVX-512 in this build

namespace tq::detail {
bool avx512_compiled() { return false; }
std::unique_ptr<KeyScorer> make_avx512_key_scorer(const Codec&) { return nullptr; }
std::unique_ptr<ValueAccumulator> make_avx512_value_accumulator(const Codec&) { return nullptr; }
}  // namespace tq::detail

#endif
