// AVX2 + FMA + F16C kernels (8 lanes) and the SIMD softmax helpers. Each layout has a
// segment decoder that turns 8 packed coordinates into 8 floats in one register:
//   f16   vcvtph2ps
//   mse   broadcast the 4 bytes holding 8 b-bit codes, shift each lane by b*lane, mask,
//         then vpermps into the codebook held in a register: that permute is the table
//         look-up (T[j][level] = q[j] * c[level] factors as q ⊙ c[idx], c being the same
//         for every coordinate), so scoring costs one FMA per 8 coordinates and row.
//         4-bit codebooks (16 levels) use two permutes and a blend on bit 3.
//   q8_0  sign-extend 8 int8, convert, times the block scale
//   q4_0  8 nibbles (low or high half of the block), minus 8, times the block scale
//   group 8 b-bit codes as for mse, then min + step * code
//   grouped  runs in chunk space (grouped_simd.h): codes by a byte shuffle (any width),
//         levels by vpermps (<= 4 bits, as mse) or a gather (5-8 bits), the run's norm
//         folded into the table (keys) or the weights (values)
// The kernel bodies are in kernels_simd.h. Codecs without a decoder here (prod, odd
// dimensions) use the portable kernels.
#include "kernels.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "grouped_simd.h"
#include "kernels_simd.h"
#include "turboquant/half.h"
#include "turboquant/quantizers.h"

namespace tq::detail {

bool avx2_compiled() { return true; }

namespace {

// exp(x) for x <= 0 (scores minus their running max): x = n ln2 + r, |r| <= ln2/2,
// e^r by its degree-6 Taylor/minimax polynomial (relative error ~2e-7), 2^n through the
// exponent bits. Below -87 the result is 0 (so masked -inf scores weigh exactly 0).
inline __m256 exp_nonpositive(__m256 x) {
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.f), _CMP_LT_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

}  // namespace

float max_of(const float* s, int T) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int t = 0;
  for (; t + 8 <= T; t += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + t));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float r = lanes[0];
  for (int i = 1; i < 8; ++i) r = std::max(r, lanes[i]);
  for (; t < T; ++t) r = std::max(r, s[t]);
  return r;
}

float exp_and_sum(const float* s, int T, float m, float* w) {
  const __m256 mv = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  int t = 0;
  for (; t + 8 <= T; t += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + t), mv));
    _mm256_storeu_ps(w + t, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = 0.f;
  for (; t < T; ++t) sum += (w[t] = std::exp(s[t] - m));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  for (float x : lanes) sum += x;
  return sum;
}

namespace {

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct V8 {
  using T = __m256;
  static constexpr int kWidth = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static float hsum(T v) { return hsum8(v); }
  // out[i] = hsum(a[i]), i < 4: the four reductions share their shuffles.
  static void hsum4(const T* a, float* out) {
    const __m256 t0 = _mm256_add_ps(_mm256_unpacklo_ps(a[0], a[1]), _mm256_unpackhi_ps(a[0], a[1]));
    const __m256 t1 = _mm256_add_ps(_mm256_unpacklo_ps(a[2], a[3]), _mm256_unpackhi_ps(a[2], a[3]));
    const __m256 u = _mm256_add_ps(_mm256_shuffle_ps(t0, t1, 0x44), _mm256_shuffle_ps(t0, t1, 0xEE));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1)));
  }
  // Lane i of the result = hsum(a[i]), i < 8: one transposing add tree for all eight.
  static T transpose_sum(const T* a) {
    __m256 p[4], q[2];
    for (int i = 0; i < 4; ++i)
      p[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 2; ++i)
      q[i] = _mm256_add_ps(_mm256_shuffle_ps(p[2 * i], p[2 * i + 1], 0x44), _mm256_shuffle_ps(p[2 * i], p[2 * i + 1], 0xEE));
    return _mm256_add_ps(_mm256_permute2f128_ps(q[0], q[1], 0x20), _mm256_permute2f128_ps(q[0], q[1], 0x31));
  }
};

// Lane l of the result: bits [b*l, b*l + b) of the 32-bit word at p.
struct CodeUnpacker {
  __m256i shift, mask;
  explicit CodeUnpacker(int bits)
      : shift(_mm256_setr_epi32(0, bits, 2 * bits, 3 * bits, 4 * bits, 5 * bits, 6 * bits, 7 * bits)),
        mask(_mm256_set1_epi32((1 << bits) - 1)) {}
  __m256i operator()(const uint8_t* p) const {
    return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(load_u32(p))), shift), mask);
  }
};

// Segment decoders: chunks [c0, c0 + nc) of 8 coordinates; load(rec, k) decodes chunk c0 + k.
// Only mse has two segments (fractional widths); the others are one segment with c0 = 0,
// so their load uses k directly and the addresses stay compile-time offsets.
struct SegBase {
  using V = V8;
  int c0, nc;
  static float norm(const uint8_t* rec) { return half_at(rec); }
  static void norms(const uint8_t* recs, size_t rec, int T, float* out) {  // out[t] = norm(recs + rec * t)
    for (int t = 0; t < T; ++t) out[t] = half_at(recs + rec * t);
  }
};

struct F16Seg : SegBase {
  __m256 load(const uint8_t* rec, int k) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + 16 * k)));
  }
};

template <bool Wide>  // Wide: 4-bit codes, 16 levels in two registers
struct MseSeg : SegBase {
  size_t offset;  // of the segment's code stream in the record
  int bits;
  CodeUnpacker unpack;
  __m256 lv0, lv1;
  MseSeg(int c0_, int nc_, size_t off, const Codebook& cb)
      : SegBase{c0_, nc_}, offset(off), bits(cb.bits), unpack(cb.bits) {
    alignas(32) float lv[16] = {};
    for (size_t i = 0; i < cb.levels.size(); ++i) lv[i] = cb.levels[i];
    lv0 = _mm256_load_ps(lv);
    lv1 = _mm256_load_ps(lv + 8);
  }
  __m256 load(const uint8_t* rec, int k) const {
    const __m256i idx = unpack(rec + offset + static_cast<size_t>(k) * bits);
    const __m256 lo = _mm256_permutevar8x32_ps(lv0, idx);
    if constexpr (!Wide) return lo;
    const __m256 hi = _mm256_permutevar8x32_ps(lv1, idx);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
  }
};

struct Q8Seg : SegBase {
  __m256 load(const uint8_t* rec, int c) const {
    const uint8_t* blk = rec + 34 * (c >> 2);
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + 8 * (c & 3)));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_set1_ps(half_at(blk)));
  }
};

struct Q4Seg : SegBase {
  __m256 load(const uint8_t* rec, int c) const {
    const uint8_t* blk = rec + 18 * (c >> 2);
    const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + 8 * (c & 1))));
    const __m256i nib = (c & 2) ? _mm256_srli_epi32(b, 4) : _mm256_and_si256(b, _mm256_set1_epi32(15));
    const __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(nib, _mm256_set1_epi32(8)));
    return _mm256_mul_ps(v, _mm256_set1_ps(half_at(blk)));
  }
};

struct GroupSeg : SegBase {
  int bits, chunks_per_group;
  size_t group_bytes;
  CodeUnpacker unpack;
  GroupSeg(int c0_, int nc_, const GroupQuantizer& gq)
      : SegBase{c0_, nc_}, bits(gq.bits()), chunks_per_group(gq.group() / 8), group_bytes(gq.group_bytes()),
        unpack(gq.bits()) {}
  __m256 load(const uint8_t* rec, int c) const {
    const uint8_t* g = rec + group_bytes * (c / chunks_per_group);
    const __m256 code = _mm256_cvtepi32_ps(unpack(g + 4 + static_cast<size_t>(c % chunks_per_group) * bits));
    return _mm256_fmadd_ps(code, _mm256_set1_ps(half_at(g + 2)), _mm256_set1_ps(half_at(g)));
  }
};

// Grouped records (grouped_simd.h), 8 coordinates per register.
struct GroupedIsa {
  using V = V8;
  using I = __m256i;
  static float half(const uint8_t* p) { return half_at(p); }
  struct Unpack {
    __m256i shuf, shift;
    explicit Unpack(int bits) {
      alignas(32) uint8_t sh[32];
      alignas(32) int32_t sr[8];
      code_shuffle(bits, 8, sh, sr);
      shuf = _mm256_load_si256(reinterpret_cast<const __m256i*>(sh));
      shift = _mm256_load_si256(reinterpret_cast<const __m256i*>(sr));
    }
    __m256i operator()(const uint8_t* p) const {  // 8 codes lie in the first 8 bytes at p
      const __m256i b = _mm256_broadcastsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
      return _mm256_srlv_epi32(_mm256_shuffle_epi8(b, shuf), shift);
    }
  };
  // Kinds: 0 one vpermps (<= 3 bits; narrower tables repeat, so the bits above a code
  // select the same level), 1 two and a blend on bit 3 (4 bits), 2 a gather (5-8 bits,
  // the only kind that masks the codes).
  struct Lut {
    static constexpr int kKinds = 3;
    static int kind(int bits) { return bits <= 3 ? 0 : bits == 4 ? 1 : 2; }
    __m256 lo, hi, post;  // post: kind 2's norm, applied after the gather
    __m256i mask;
    const float* all;
    Lut(const float* levels, int b) : post(_mm256_set1_ps(1.f)), mask(_mm256_set1_epi32((1 << b) - 1)), all(levels) {
      alignas(32) float lv[16] = {};
      const int n = 1 << b, span = b <= 3 ? 8 : 16;
      for (int i = 0; i < span && n <= 16; ++i) lv[i] = levels[i % n];
      lo = _mm256_load_ps(lv);
      hi = _mm256_load_ps(lv + 8);
    }
    template <int K>
    Lut with_norm(__m256 n) const {
      Lut s = *this;
      if constexpr (K == 2) {
        s.post = n;
      } else {
        s.lo = _mm256_mul_ps(lo, n);
        if constexpr (K == 1) s.hi = _mm256_mul_ps(hi, n);
      }
      return s;
    }
    template <int K>
    __m256 get(__m256i idx) const {
      if constexpr (K == 0) return _mm256_permutevar8x32_ps(lo, idx);
      if constexpr (K == 1)
        return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                                _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
      if constexpr (K == 2) return _mm256_mul_ps(_mm256_i32gather_ps(all, _mm256_and_si256(idx, mask), 4), post);
    }
  };
};

// Builds the kernel K<Seg> for a codec's layout, or nullptr when there is none.
template <template <class> class K, class Base>
std::unique_ptr<Base> make_avx2(const Codec& c) {
  const int D = c.code_dim();
  if (D % 8 != 0) return nullptr;
  const int nc = D / 8;
  simd::Layout L{c.record_bytes(), false, D};
  const Quantizer& q = c.quantizer();
  switch (c.spec().quant) {
    case QuantKind::f16: return std::make_unique<K<F16Seg>>(std::vector<F16Seg>{F16Seg{{0, nc}}}, L);
    case QuantKind::q8_0: return std::make_unique<K<Q8Seg>>(std::vector<Q8Seg>{Q8Seg{{0, nc}}}, L);
    case QuantKind::q4_0: return std::make_unique<K<Q4Seg>>(std::vector<Q4Seg>{Q4Seg{{0, nc}}}, L);
    case QuantKind::group: {
      const auto& gq = static_cast<const GroupQuantizer&>(q);
      if (gq.group() % 8 != 0 || gq.bits() > 4) return nullptr;
      return std::make_unique<K<GroupSeg>>(std::vector<GroupSeg>{GroupSeg(0, nc, gq)}, L);
    }
    case QuantKind::mse: {
      const auto& mq = static_cast<const MseQuantizer&>(q);
      if (mq.n_hi() % 8 != 0 || mq.hi().bits > 4 || mq.lo().bits > 4) return nullptr;
      L.normed = true;
      const int hi_c = mq.n_hi() / 8;
      if (mq.hi().bits == 4 || mq.lo().bits == 4) {
        std::vector<MseSeg<true>> segs{MseSeg<true>(0, hi_c, mq.hi_offset(), mq.hi())};
        if (hi_c < nc) segs.emplace_back(hi_c, nc - hi_c, mq.lo_offset(), mq.lo());
        return std::make_unique<K<MseSeg<true>>>(std::move(segs), L);
      }
      std::vector<MseSeg<false>> segs{MseSeg<false>(0, hi_c, mq.hi_offset(), mq.hi())};
      if (hi_c < nc) segs.emplace_back(hi_c, nc - hi_c, mq.lo_offset(), mq.lo());
      return std::make_unique<K<MseSeg<false>>>(std::move(segs), L);
    }
    case QuantKind::grouped: return simd::make_grouped<Base, GroupedIsa>(c);
    case QuantKind::prod:
    case QuantKind::fp8: return nullptr;
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<KeyScorer> make_avx2_key_scorer(const Codec& codec) {
  return make_avx2<simd::Scorer, KeyScorer>(codec);
}
std::unique_ptr<ValueAccumulator> make_avx2_value_accumulator(const Codec& codec) {
  return make_avx2<simd::Accumulator, ValueAccumulator>(codec);
}

}  // namespace tq::detail

#else  // no AVX2/FMA/F16C in this build: the portable kernels serve every codec

#include <algorithm>
#include <cmath>

namespace tq::detail {
bool avx2_compiled() { return false; }
float max_of(const float* s, int T) {
  float m = -INFINITY;
  for (int t = 0; t < T; ++t) m = std::max(m, s[t]);
  return m;
}
float exp_and_sum(const float* s, int T, float m, float* w) {
  float sum = 0.f;
  for (int t = 0; t < T; ++t) sum += (w[t] = std::exp(s[t] - m));
  return sum;
}
std::unique_ptr<KeyScorer> make_avx2_key_scorer(const Codec&) { return nullptr; }
std::unique_ptr<ValueAccumulator> make_avx2_value_accumulator(const Codec&) { return nullptr; }
}  // namespace tq::detail

#endif
