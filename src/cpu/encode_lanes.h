#pragma once
// The lane-parallel encoder, written once over an instruction-set description Isa:
//   Isa::W, F, I, U, DH         lanes (vectors encoded together) and the vector types of
//                               Types<W>: W floats, int32, uint32; W/2 doubles
//   Isa::widen(F, DH[2])        lanes [0, W/2) and [W/2, W) of F in double
//   Isa::transpose(rows, j, t)  t[k] lane r = rows[r][j + k] for k, r < W
//   Isa::nearbyint(F)           round to nearest even
//   Isa::half_bits(F) -> I      fp16 bits (round to nearest even) in the low 16 bits
//   Isa::round_to_half(F)       through fp16 and back
// A batch is transposed so that row j holds coordinate j of the W vectors. Each lane then
// runs exactly the reference's float operations in the reference's order: rotation rows
// are summed over j ascending (the matrix is read once per batch), the Hadamard butterflies
// are the same adds, norms accumulate in double coordinate by coordinate, and codebook
// indices count the sorted boundaries at or below y_i/‖y‖, and fp16 fields saturate and
// count as the reference's do (core/half_fields.h). So the records are byte-identical to
// Codec::encode, not merely close.
// Included only by the encode_*.cpp files, which compile with -ffp-contract=off like the
// reference (src/core): every a*b + c rounds twice on both sides, on every target.
#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/half_fields.h"
#include "../core/rotations_impl.h"
#include "encode.h"
#include "turboquant/fp8.h"
#include "turboquant/half.h"
#include "turboquant/quant_traits.h"
#include "turboquant/quantizers.h"

namespace tq::detail::lanes {

// The vector types of a W-lane Isa (derive from it and add the functions).
template <int Lanes>
struct Types {
  static constexpr int W = Lanes;
  typedef float F __attribute__((vector_size(4 * Lanes)));
  typedef int32_t I __attribute__((vector_size(4 * Lanes)));
  typedef uint32_t U __attribute__((vector_size(4 * Lanes)));
  typedef double DH __attribute__((vector_size(4 * Lanes)));
};

template <class Isa>
typename Isa::F abs_of(typename Isa::F x) {
  using F = typename Isa::F;
  using U = typename Isa::U;
  return F(U(x) & 0x7fffffffu);
}

// clamp_to_half_range (half.h) per lane; the lanes it changed are set in `clamped`.
template <class Isa>
typename Isa::F clamp_to_half_range(typename Isa::F x, typename Isa::I& clamped) {
  using F = typename Isa::F;
  using I = typename Isa::I;
  using U = typename Isa::U;
  const I in_range = abs_of<Isa>(x) < kHalfOverflow;  // false for NaN
  clamped |= ~in_range;
  const F signed_max = F((U(x) & 0x80000000u) | std::bit_cast<uint32_t>(kHalfMax));
  return in_range ? x : (x == x ? signed_max : F{});
}

// reciprocal_or_zero (core/half_fields.h) per lane.
template <class Isa>
typename Isa::F reciprocal_or_zero(typename Isa::F x) {
  using F = typename Isa::F;
  const F r = 1.f / x;  // ±Inf for a zero or a too small x
  return abs_of<Isa>(r) <= FLT_MAX ? r : F{};
}

// float_to_e4m3 (fp8.h) per lane, for finite x: the code in the low 8 bits.
template <class Isa>
typename Isa::U e4m3_bits(typename Isa::F x) {
  using U = typename Isa::U;
  const U bits = U(x);
  const U sign = (bits >> 24) & 0x80u;
  const U abs = bits & 0x7fffffffu;
  // Normal: rebias, round the 20 dropped bits to nearest even (masks are -1).
  U normal = (abs - 0x3c000000u) >> 20;
  const U rest = abs & 0xfffffu;
  normal -= U((rest > 0x80000u) | ((rest == 0x80000u) & ((normal & 1u) != 0u)));
  // Subnormal (2^-10 < |x| < 2^-6): mant >> shift rounded to nearest even; the shift is
  // clamped so that lanes of the other cases shift by a defined amount.
  U shift = 141u - (abs >> 23);  // wraps above 2^14: clamped to 24
  shift = shift < 21u ? U{} + 21u : shift;
  shift = shift > 24u ? U{} + 24u : shift;
  const U mant = (abs & 0x7fffffu) | 0x800000u;
  const U kept = mant >> shift;
  const U sub_rest = mant & (((U{} + 1u) << shift) - 1u);
  const U halfway = (U{} + 1u) << (shift - 1u);
  const U sub = kept - U((sub_rest > halfway) | ((sub_rest == halfway) & ((kept & 1u) != 0u)));
  U code = abs < 0x3c800000u ? sub : normal;
  code = abs <= 0x3a800000u ? U{} : code;
  code = abs >= 0x43e00000u ? U{} + 0x7eu : code;
  return sign | code;
}

// Whether the lane encoder handles this codec: every record field must be built from
// whole 32-coordinate runs (head_dim 64/128/256 all are), which also makes whole tiles
// of W coordinates for the transposes. Which kinds have a lane encoder, and up to which
// width, is their row's (quant_traits.h; grouped has none: an affine map in front, the
// reference encodes).
inline bool supported(const Codec& c) {
  if (c.dim() % 32 != 0 || c.code_dim() % 32 != 0) return false;
  const QuantTraits& row = quant_traits(c.spec().quant);
  const int widest = std::max(c.spec().bits, c.spec().bits_lo);
  return row.cpu_lane_encoder && (row.cpu_lane_max_bits == 0 || widest <= row.cpu_lane_max_bits);
}

// The W records of a batch as 32-bit words in lane layout: words[k] lane b holds bytes
// [4k, 4k + 4) of record b. Fields are OR-ed in at any byte offset (each byte is written
// once); LaneEncoder::write_records transposes them back to one record per lane.
template <class Isa>
struct Records {
  using F = typename Isa::F;
  using I = typename Isa::I;
  using U = typename Isa::U;
  U* words;     // staged_words() of them, zeroed
  I* clamped;   // lanes with a saturated fp16 field
  void put(U w, size_t off, int bytes) const {
    if (bytes < 4) w &= (1u << 8 * bytes) - 1u;
    const size_t k = off / 4;
    const int shift = 8 * static_cast<int>(off % 4);
    words[k] |= w << shift;
    if (shift && shift + 8 * bytes > 32) words[k + 1] |= w >> (32 - shift);
  }
  void put_half(I h, size_t off) const { put(U(h), off, 2); }
  // fp16 bits of a field, saturated like the reference's HalfFields::store.
  I field_bits(F x) const { return Isa::half_bits(clamp_to_half_range<Isa>(x, *clamped)); }
  void put_field(F x, size_t off) const { put_half(field_bits(x), off); }
  // The value put_field(x) reads back as, like HalfFields::round.
  F round_field(F x) const { return Isa::round_to_half(clamp_to_half_range<Isa>(x, *clamped)); }
};

// Words of staging for records of `rec` bytes: whole W-word tiles, plus room for put()'s
// spill past the last byte.
template <class Isa>
size_t staged_words(size_t rec) {
  return (rec / 4 / Isa::W + 1) * Isa::W;
}

// LSB-first bit stream of `count` codes of B bits each (code(i) gives row i's codes as U),
// written at `off` of every record: packed_bytes(count, B) bytes.
template <int B, class Isa, class Code>
void pack_run(const Records<Isa>& out, size_t off, int count, Code&& code) {
  using U = typename Isa::U;
  U w{};
  int used = 0;
  for (int i = 0; i < count; ++i) {
    const U c = code(i);
    w |= c << used;
    used += B;
    if (used >= 32) {
      out.put(w, off, 4);
      off += 4;
      used -= 32;
      w = used ? c >> (B - used) : U{};  // the bits of c that did not fit
    }
  }
  if (used) out.put(w, off, (used + 7) / 8);
}

// f.template operator()<B>() with the code width as a constant (1..4 bits).
template <class Fn>
void with_bits(int bits, Fn&& f) {
  switch (bits) {
    case 1: return f.template operator()<1>();
    case 2: return f.template operator()<2>();
    case 3: return f.template operator()<3>();
    default: return f.template operator()<4>();
  }
}

// table[idx] per lane, for a table of at most 16 floats.
template <class Isa>
typename Isa::F lookup(const float* table16, typename Isa::I idx) {
  using F = typename Isa::F;
#if defined(__clang__)
  // clang has no variable-index __builtin_shuffle; the same selection (index modulo the
  // 16 table entries), one lane at a time. Only clang builds (fuzzing) take this path.
  F out;
  for (int i = 0; i < Isa::W; ++i) out[i] = table16[idx[i] & 15];
  return out;
#else
  F lo;
  std::memcpy(&lo, table16, sizeof(F));
  if constexpr (Isa::W >= 16) {
    return __builtin_shuffle(lo, idx);
  } else {
    static_assert(2 * Isa::W >= 16);
    F hi;
    std::memcpy(&hi, table16 + Isa::W, sizeof(F));
    return __builtin_shuffle(lo, hi, idx);
  }
#endif
}

template <class Isa>
class LaneEncoder final : public RecordEncoder {
  using F = typename Isa::F;
  using I = typename Isa::I;
  using U = typename Isa::U;
  using DH = typename Isa::DH;
  static constexpr int W = Isa::W;

 public:
  explicit LaneEncoder(const Codec& c)
      : codec_(c), dim_(c.dim()), code_dim_(c.code_dim()), rec_(c.record_bytes()) {
    const Rotation& r = codec_.rotation();
    dense_ = dynamic_cast<const DenseRotation*>(&r);
    rht_ = dynamic_cast<const RhtRotation*>(&r);
    blocks_ = dynamic_cast<const BlockRotation*>(&r);
    if (c.spec().quant == QuantKind::mse) {
      const auto& q = static_cast<const MseQuantizer&>(c.quantizer());
      corrected_ = q.corrected_norm();
      runs_.push_back(make_run(0, q.n_hi(), q.hi_offset(), q.hi()));
      if (q.n_hi() < code_dim_) runs_.push_back(make_run(q.n_hi(), code_dim_, q.lo_offset(), q.lo()));
    }
    if (c.spec().quant == QuantKind::prod) {
      prod_ = static_cast<const ProdQuantizer*>(&c.quantizer());
      runs_.push_back(make_run(0, code_dim_, prod_->code_offset(), prod_->codebook()));
    }
    if (c.spec().quant == QuantKind::group) {
      const auto& q = static_cast<const GroupQuantizer&>(c.quantizer());
      group_ = q.group();
      group_bits_ = q.bits();
      group_bytes_ = q.group_bytes();
    }
  }

  void encode(const float* x, size_t x_stride, int n, uint8_t* out, size_t out_stride) const override {
    thread_local std::vector<F> xt, yt;
    thread_local std::vector<U> words;
    xt.resize(dim_);
    yt.resize(code_dim_);
    words.resize(staged_words<Isa>(rec_));
    for (int b0 = 0; b0 < n; b0 += W) {
      const int nb = std::min(W, n - b0);
      transpose_in(x + x_stride * b0, x_stride, nb, xt.data());
      const F* y = rotate(xt.data(), yt.data());
      std::fill(words.begin(), words.end(), U{});
      I clamped{};
      encode_rotated(y, Records<Isa>{words.data(), &clamped});
      write_records(words, nb, out + out_stride * b0, out_stride);
      int saturated = 0;
      for (int b = 0; b < nb; ++b) saturated += clamped[b] != 0;
      count_saturated(saturated);
    }
  }

 private:
  struct Run {  // mse, prod: rows [begin, end) coded with one codebook at `offset`
    int begin, end, bits;
    size_t offset;
    float bounds[15] = {};
    float levels[16] = {};
  };
  static Run make_run(int begin, int end, size_t offset, const Codebook& cb) {
    Run r{begin, end, cb.bits, offset};
    std::copy(cb.boundaries.begin(), cb.boundaries.end(), r.bounds);
    std::copy(cb.levels.begin(), cb.levels.end(), r.levels);
    return r;
  }

  // xt[j] lane b = coordinate j of vector b; lanes >= nb are zero (encoded, never written).
  void transpose_in(const float* x, size_t stride, int nb, F* xt) const {
    static const float zeros[1024] = {};
    const float* rows[W];
    for (int b = 0; b < W; ++b) rows[b] = b < nb ? x + stride * b : zeros;
    for (int j0 = 0; j0 < dim_; j0 += W) Isa::transpose(rows, j0, xt + j0);
  }

  // Record b gets lane b of every staged word, a W x W tile at a time, and not a byte
  // past rec_ (the next record may belong to another thread's run).
  void write_records(const std::vector<U>& words, int nb, uint8_t* out, size_t stride) const {
    for (size_t k0 = 0; 4 * k0 < rec_; k0 += W) {
      const float* rows[W];
      for (int r = 0; r < W; ++r) rows[r] = reinterpret_cast<const float*>(&words[k0 + r]);
      F t[W];
      Isa::transpose(rows, 0, t);
      const size_t bytes = std::min(sizeof(F), rec_ - 4 * k0);
      for (int b = 0; b < nb; ++b) std::memcpy(out + stride * b + 4 * k0, &t[b], bytes);
    }
  }

  const F* rotate(const F* xt, F* yt) const {
    if (dense_) {
      rotate_dense(xt, yt);
    } else if (rht_) {
      rotate_rht(xt, yt);
    } else if (blocks_) {
      rotate_blocks(xt, yt);
    } else {
      return xt;  // rotation none
    }
    return yt;
  }

  void rotate_dense(const F* xt, F* yt) const { dense_product(dense_->matrix().data(), dim_, xt, yt); }

  // y_i = sum_j M_ij x_j over j ascending for the n x n row-major M, eight rows at a time so
  // each x_j is loaded once (the matrix is read once per batch).
  static void dense_product(const float* m, int n, const F* xt, F* yt) {
    for (int i0 = 0; i0 < n; i0 += 8) {
      F acc[8] = {};
      const float* row = m + static_cast<size_t>(i0) * n;
      for (int j = 0; j < n; ++j) {
        const F xj = xt[j];
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) acc[r] = acc[r] + row[static_cast<size_t>(r) * n + j] * xj;
      }
      for (int r = 0; r < 8; ++r) yt[i0 + r] = acc[r];
    }
  }

  // RhtRotation::forward on W vectors: the same sign flips, butterflies and scaling.
  void rotate_rht(const F* xt, F* yt) const {
    const int n = code_dim_;
    const float scale = 1.f / std::sqrt(static_cast<float>(n));
    const std::vector<int>& perm = rht_->permutation();
    for (int i = 0; i < n; ++i) yt[i] = perm[i] < dim_ ? xt[perm[i]] : F{};
    for (int round = 0; round < rht_->options().rounds; ++round) {
      const float* s = rht_->signs(round).data();
      for (int i = 0; i < n; ++i) yt[i] = yt[i] * s[i];
      fwht(yt, n);
      for (int i = 0; i < n; ++i) yt[i] = yt[i] * scale;
    }
  }

  // The reference's butterflies (stage h pairs j with j + h), two stages per pass over
  // the data: the same adds on the same values, with half the loads and stores.
  static void fwht(F* z, int n) {
    int h = 1;
    for (; 4 * h <= n; h *= 4)
      for (int i = 0; i < n; i += 4 * h)
        for (int j = i; j < i + h; ++j) {
          const F a = z[j] + z[j + h], b = z[j] - z[j + h];
          const F c = z[j + 2 * h] + z[j + 3 * h], d = z[j + 2 * h] - z[j + 3 * h];
          z[j] = a + c;
          z[j + 2 * h] = a - c;
          z[j + h] = b + d;
          z[j + 3 * h] = b - d;
        }
    if (h < n)
      for (int j = 0; j < h; ++j) {
        const F a = z[j], b = z[j + h];
        z[j] = a + b;
        z[j + h] = a - b;
      }
  }

  void rotate_blocks(const F* xt, F* yt) const {
    for (const BlockRotation::Block& b : blocks_->blocks())
      for (int i = 0; i < b.size; ++i) {
        F s{};
        for (int j = 0; j < b.size; ++j) s = s + b.m[i * b.size + j] * xt[b.offset + j];
        yt[b.offset + i] = s;
      }
  }

  // The rotated batch to records, per lane: the kind's Quantizer::encode, vectorized.
  void encode_rotated(const F* y, const Records<Isa>& out) const {
    switch (codec_.spec().quant) {
      case QuantKind::f16: return encode_f16(y, out);
      case QuantKind::q8_0: return encode_q8_0(y, out);
      case QuantKind::q4_0: return encode_q4_0(y, out);
      case QuantKind::mse: return encode_mse(y, out);
      case QuantKind::group: return encode_group(y, out);
      case QuantKind::prod: return encode_prod(y, out);
      case QuantKind::fp8: return encode_fp8(y, out);
      case QuantKind::grouped: break;  // never built: supported() is false
    }
  }

  // Every coordinate is a field. The plain conversion, checked on the way; only a batch
  // with a value past fp16's range is written again saturated (a clamp on every
  // coordinate cost f16 writes 15%, this check 7%).
  void encode_f16(const F* y, const Records<Isa>& out) const {
    I in_range = ~I{};
    for (int k = 0; k < code_dim_ / 2; ++k) {
      const F a = y[2 * k], b = y[2 * k + 1];
      in_range &= (abs_of<Isa>(a) < kHalfOverflow) & (abs_of<Isa>(b) < kHalfOverflow);  // false for NaN
      out.put(U(Isa::half_bits(a)) | U(Isa::half_bits(b)) << 16, 4 * k, 4);
    }
    bool fits = true;
    for (int b = 0; b < W; ++b) fits &= in_range[b] != 0;
    if (fits) return;
    std::fill(out.words, out.words + staged_words<Isa>(rec_), U{});
    for (int k = 0; k < code_dim_ / 2; ++k)
      out.put(U(out.field_bits(y[2 * k])) | U(out.field_bits(y[2 * k + 1])) << 16, 4 * k, 4);
  }

  // llama.cpp q8_0: d = max|y|/127, q = roundf(y/d) (half away from zero).
  void encode_q8_0(const F* y, const Records<Isa>& out) const {
    for (int bl = 0; bl < code_dim_ / 32; ++bl) {
      const F* v = y + 32 * bl;
      const size_t off = sizeof(blocks::BlockQ8_0) * bl;
      F amax{};
      for (int j = 0; j < 32; ++j) {
        const F a = abs_of<Isa>(v[j]);
        amax = amax < a ? a : amax;
      }
      const F d = amax / 127.f;
      const F id = reciprocal_or_zero<Isa>(d);
      out.put_field(d, off);
      auto q = [&](int j) {
        const F s = v[j] * id;
        I t = __builtin_convertvector(s, I);  // truncates
        const F frac = s - __builtin_convertvector(t, F);  // exact
        t = t - (frac >= 0.5f) + (frac <= -0.5f);  // masks are -1
        return U(t) & 0xffu;
      };
      for (int j = 0; j < 32; j += 4)
        out.put(q(j) | q(j + 1) << 8 | q(j + 2) << 16 | q(j + 3) << 24, off + 2 + j, 4);
    }
  }

  // fp8: the scale per lane through the reference's Fp8Quantizer::scale_bits (one per
  // vector), codes the E4M3 rounding of y·(1/s).
  void encode_fp8(const F* y, const Records<Isa>& out) const {
    F amax{};
    for (int j = 0; j < code_dim_; ++j) {
      const F a = abs_of<Isa>(y[j]);
      amax = amax < a ? a : amax;
    }
    I h{};
    F inv{};
    for (int b = 0; b < W; ++b) {
      bool saturated = false;
      h[b] = Fp8Quantizer::scale_bits(amax[b], saturated);
      inv[b] = tq::detail::reciprocal_or_zero(half_to_float(static_cast<uint16_t>(h[b])));
      if (saturated) (*out.clamped)[b] = -1;
    }
    out.put_half(h, 0);
    for (int j = 0; j < code_dim_; j += 4) {
      const U c = e4m3_bits<Isa>(y[j] * inv) | e4m3_bits<Isa>(y[j + 1] * inv) << 8 |
                  e4m3_bits<Isa>(y[j + 2] * inv) << 16 | e4m3_bits<Isa>(y[j + 3] * inv) << 24;
      out.put(c, 2 + j, 4);
    }
  }

  // llama.cpp q4_0: m = first value of largest magnitude, d = m/-8,
  // q = min(15, trunc(y/d + 8.5)); byte j = q_j | q_{j+16} << 4.
  void encode_q4_0(const F* y, const Records<Isa>& out) const {
    for (int bl = 0; bl < code_dim_ / 32; ++bl) {
      const F* v = y + 32 * bl;
      const size_t off = sizeof(blocks::BlockQ4_0) * bl;
      F amax{}, m{};
      for (int j = 0; j < 32; ++j) {
        const F a = abs_of<Isa>(v[j]);
        const I bigger = amax < a;
        m = bigger ? v[j] : m;
        amax = bigger ? a : amax;
      }
      const F d = m / -8.f;
      const F id = reciprocal_or_zero<Isa>(d);
      out.put_field(d, off);
      auto q = [&](int j) {
        const I t = __builtin_convertvector(v[j] * id + 8.5f, I);
        return U(t < 15 ? t : I{} + 15);
      };
      auto byte = [&](int j) { return q(j) | q(j + 16) << 4; };
      for (int j = 0; j < 16; j += 4)
        out.put(byte(j) | byte(j + 1) << 8 | byte(j + 2) << 16 | byte(j + 3) << 24, off + 2 + j, 4);
    }
  }

  // ‖y‖ per lane (summed in double in coordinate order, as the reference) and 1/‖y‖ (0 for
  // a zero vector).
  void norms(const F* y, F& norm, F& inv) const {
    DH n2[2] = {};  // lanes [0, W/2) and [W/2, W)
    for (int i = 0; i < code_dim_; ++i) {
      DH yd[2];
      Isa::widen(y[i], yd);
      for (int h = 0; h < 2; ++h) n2[h] = n2[h] + yd[h] * yd[h];  // exact products
    }
    norm = inv = F{};
    for (int b = 0; b < W; ++b) {
      norm[b] = static_cast<float>(std::sqrt(n2[b / (W / 2)][b % (W / 2)]));
      inv[b] = tq::detail::reciprocal_or_zero(norm[b]);
    }
  }

  // Codebook index of t: the number of boundaries at or below it (ties go up).
  template <int B>
  static I index_of(const Run& r, F t) {
    I idx{};
    for (int k = 0; k < (1 << B) - 1; ++k) idx -= t >= r.bounds[k];  // masks are -1
    return idx;
  }

  static double lane(const DH* d, int b) { return d[b / (W / 2)][b % (W / 2)]; }

  void encode_mse(const F* y, const Records<Isa>& out) const {
    F norm, inv;
    norms(y, norm, inv);
    DH c2[2] = {};
    for (const Run& r : runs_) {
      with_bits(r.bits, [&]<int B>() {
        pack_run<B>(out, r.offset, r.end - r.begin, [&](int i) {
          const I idx = index_of<B>(r, y[r.begin + i] * inv);
          if (corrected_) {
            DH lv[2];
            Isa::widen(lookup<Isa>(r.levels, idx), lv);
            for (int h = 0; h < 2; ++h) c2[h] = c2[h] + lv[h] * lv[h];
          }
          return U(idx);
        });
      });
    }
    F stored{};
    for (int b = 0; b < W; ++b)
      stored[b] = corrected_ && norm[b] > 0 ? static_cast<float>(norm[b] / std::sqrt(lane(c2, b))) : norm[b];
    out.put_field(stored, 0);
  }

  // TurboQuant_prod: (b−1)-bit indices of u = y/‖y‖, the residual r = u − c[idx], γ = ‖r‖
  // in double, and the signs of S r with S·r summed as the dense rotation is.
  void encode_prod(const F* y, const Records<Isa>& out) const {
    thread_local std::vector<F> res, proj;
    res.resize(code_dim_);
    proj.resize(code_dim_);
    F norm, inv;
    norms(y, norm, inv);
    DH g2[2] = {};
    const Run& r = runs_[0];
    with_bits(r.bits, [&]<int B>() {
      pack_run<B>(out, r.offset, code_dim_, [&](int i) {
        const I idx = index_of<B>(r, y[i] * inv);
        res[i] = y[i] * inv - lookup<Isa>(r.levels, idx);
        DH rd[2];
        Isa::widen(res[i], rd);
        for (int h = 0; h < 2; ++h) g2[h] = g2[h] + rd[h] * rd[h];
        return U(idx);
      });
    });
    dense_product(prod_->qjl_matrix().data(), code_dim_, res.data(), proj.data());
    pack_run<1>(out, prod_->sign_offset(), code_dim_, [&](int j) { return U(proj[j] >= 0.f) & 1u; });
    F gamma{};
    for (int b = 0; b < W; ++b) gamma[b] = norm[b] == 0 ? 0.f : static_cast<float>(std::sqrt(lane(g2, b)));
    out.put_field(norm, 0);
    out.put_field(gamma, 2);
  }

  // min and max as std::minmax_element picks them (first smallest, last largest: it
  // matters for the sign of a zero), then codes from the fp16-rounded min and step.
  void encode_group(const F* y, const Records<Isa>& out) const {
    const float top = static_cast<float>((1 << group_bits_) - 1);
    for (int g = 0; g < code_dim_ / group_; ++g) {
      const F* v = y + group_ * g;
      const size_t off = group_bytes_ * g;
      F lo = v[0], hi = v[0];
      for (int i = 1; i < group_; ++i) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] < hi ? hi : v[i];
      }
      const F mn = out.round_field(lo);
      const F step = out.round_field((hi - mn) / top);
      out.put_half(Isa::half_bits(mn), off);
      out.put_half(Isa::half_bits(step), off + 2);
      with_bits(group_bits_, [&]<int B>() {
        pack_run<B>(out, off + 4, group_, [&](int i) {
          F c = step > 0.f ? Isa::nearbyint((v[i] - mn) / step) : F{};
          c = c < 0.f ? F{} : c;
          c = top < c ? F{} + top : c;
          return U(__builtin_convertvector(c, I));
        });
      });
    }
  }

  Codec codec_;  // a copy: keeps the rotation and quantizer alive
  int dim_, code_dim_;
  size_t rec_;
  const DenseRotation* dense_ = nullptr;
  const RhtRotation* rht_ = nullptr;
  const BlockRotation* blocks_ = nullptr;
  const ProdQuantizer* prod_ = nullptr;
  bool corrected_ = false;
  std::vector<Run> runs_;
  int group_ = 0, group_bits_ = 0;
  size_t group_bytes_ = 0;
};

template <class Isa>
std::unique_ptr<RecordEncoder> make(const Codec& c) {
  if (!supported(c)) return nullptr;
  return std::make_unique<LaneEncoder<Isa>>(c);
}

}  // namespace tq::detail::lanes
