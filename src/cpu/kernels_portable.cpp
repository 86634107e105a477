// Portable kernels: plain C++, what runs without AVX2, and the fallback for layouts the
// SIMD file does not cover.
//   mse:  table look-up scoring. Per query row a table T[j][level] = q_rot[j] * c[level]
//         is built once; a key then costs one look-up and one add per coordinate:
//         score = n * sum_j T[j][idx_j]. Values are decoded through the level table.
//   f16:  fp16 -> float per coordinate.
//   grouped: GroupedLayout::decode (levels pre-scaled, several codes per read).
//   rest: the quantizer's own decode (or dot, for prod keys whose state holds S q).
#include <algorithm>
#include <optional>
#include <vector>

#include "grouped_layout.h"
#include "kernels.h"
#include "turboquant/half.h"
#include "turboquant/packing.h"
#include "turboquant/quantizers.h"

namespace tq::detail {

namespace {

// Level indices of a record's codes, both runs, in coordinate order.
void mse_indices(const MseQuantizer& mq, const uint8_t* rec, uint8_t* idx) {
  unpack_bits(rec + mq.hi_offset(), mq.n_hi(), mq.hi().bits, idx);
  unpack_bits(rec + mq.lo_offset(), mq.dim() - mq.n_hi(), mq.lo().bits, idx + mq.n_hi());
}

class MseLutScorer final : public KeyScorer {
 public:
  explicit MseLutScorer(const Codec& c) : mq_(static_cast<const MseQuantizer&>(c.quantizer())), rec_(c.record_bytes()) {
    hi_levels_ = 1 << mq_.hi().bits;
    lo_levels_ = 1 << mq_.lo().bits;
  }
  size_t state_floats() const override {
    return static_cast<size_t>(mq_.n_hi()) * hi_levels_ + static_cast<size_t>(mq_.dim() - mq_.n_hi()) * lo_levels_;
  }
  void prepare(const float* q, float* table) const override {
    for (int j = 0; j < mq_.dim(); ++j) {
      const bool hi = j < mq_.n_hi();
      const Codebook& cb = hi ? mq_.hi() : mq_.lo();
      float* row = table + offset(j);
      for (size_t l = 0; l < cb.levels.size(); ++l) row[l] = q[j] * cb.levels[l];
    }
  }
  void score(const float* states, int R, const uint8_t* records, int T, float* scores) const override {
    const int D = mq_.dim();
    std::vector<uint8_t> idx(D);
    std::vector<uint32_t> off(D);  // table offset of each coordinate's chosen level
    const size_t sf = state_floats();
    for (int t = 0; t < T; ++t) {
      const uint8_t* rec = records + rec_ * t;
      mse_indices(mq_, rec, idx.data());
      for (int j = 0; j < D; ++j) off[j] = static_cast<uint32_t>(offset(j) + idx[j]);
      const float n = load_half(rec);
      for (int r = 0; r < R; ++r) {
        const float* table = states + sf * r;
        float s = 0.f;
        for (int j = 0; j < D; ++j) s += table[off[j]];
        scores[static_cast<size_t>(r) * T + t] = n * s;
      }
    }
  }

 private:
  size_t offset(int j) const {
    return j < mq_.n_hi() ? static_cast<size_t>(j) * hi_levels_
                          : static_cast<size_t>(mq_.n_hi()) * hi_levels_ + static_cast<size_t>(j - mq_.n_hi()) * lo_levels_;
  }
  const MseQuantizer& mq_;
  size_t rec_;
  int hi_levels_, lo_levels_;
};

// Record -> floats for the decoding kernels: f16 inline, grouped through its prepared
// layout, the rest via the quantizer.
class RecordDecoder {
 public:
  explicit RecordDecoder(const Codec& c) : c_(c) {
    if (c.spec().quant == QuantKind::grouped)
      grouped_.emplace(static_cast<const GroupedMseQuantizer&>(c.quantizer()));
  }
  void operator()(const uint8_t* rec, float* y) const {
    if (c_.spec().quant == QuantKind::f16)
      for (int j = 0; j < c_.code_dim(); ++j) y[j] = load_half(rec + 2 * j);
    else if (grouped_)
      grouped_->decode(rec, y);
    else
      c_.quantizer().decode(rec, y);
  }

 private:
  const Codec& c_;
  std::optional<GroupedLayout> grouped_;
};

// Keys of any other layout: decode to floats once per tile, or the quantizer's dot for
// prod, whose state is [q, S q].
class DecodingScorer final : public KeyScorer {
 public:
  explicit DecodingScorer(const Codec& c) : c_(c), rec_(c.record_bytes()), decode_(c) {}
  int rows_per_read() const override { return kDecodeRows; }
  size_t state_floats() const override { return c_.query_state_floats(); }
  void prepare(const float* q, float* state) const override {
    for (size_t i = 0; i < state_floats(); ++i) state[i] = q[i];
  }
  void score(const float* states, int R, const uint8_t* records, int T, float* scores) const override {
    const int D = c_.code_dim();
    const size_t sf = state_floats();
    const QuantKind kind = c_.spec().quant;
    std::vector<float> y(D);
    for (int t = 0; t < T; ++t) {
      const uint8_t* rec = records + rec_ * t;
      if (kind == QuantKind::prod) {  // state beyond q: [q, S q] for the QJL residual
        for (int r = 0; r < R; ++r) scores[static_cast<size_t>(r) * T + t] = c_.quantizer().dot(states + sf * r, rec);
        continue;
      }
      decode_(rec, y.data());
      // grouped: the state's last float is the constant q·μ of the calibrated map's mean.
      const bool offset = kind == QuantKind::grouped;
      for (int r = 0; r < R; ++r) {
        const float* q = states + sf * r;
        float s = offset ? q[D] : 0.f;
        for (int j = 0; j < D; ++j) s += q[j] * y[j];
        scores[static_cast<size_t>(r) * T + t] = s;
      }
    }
  }

 private:
  const Codec& c_;
  size_t rec_;
  RecordDecoder decode_;
};

// Values: decode each record once (mse through its level table), then one axpy per row.
class DecodingAccumulator final : public ValueAccumulator {
 public:
  explicit DecodingAccumulator(const Codec& c) : c_(c), rec_(c.record_bytes()), decode_(c) {}
  int rows_per_read() const override { return kDecodeRows; }
  void add(const uint8_t* records, int T, const float* w, int R, float* acc) const override {
    const int D = c_.code_dim();
    const QuantKind kind = c_.spec().quant;
    std::vector<float> y(D);
    std::vector<uint8_t> idx(D);
    for (int t = 0; t < T; ++t) {
      const uint8_t* rec = records + rec_ * t;
      float scale = 1.f;
      if (kind == QuantKind::mse) {
        const auto& mq = static_cast<const MseQuantizer&>(c_.quantizer());
        mse_indices(mq, rec, idx.data());
        for (int j = 0; j < D; ++j) y[j] = (j < mq.n_hi() ? mq.hi() : mq.lo()).levels[idx[j]];
        scale = load_half(rec);
      } else {
        decode_(rec, y.data());
      }
      for (int r = 0; r < R; ++r) {
        const float wt = w[static_cast<size_t>(r) * T + t] * scale;
        if (wt == 0.f) continue;  // masked token
        float* a = acc + static_cast<size_t>(r) * D;
        for (int j = 0; j < D; ++j) a[j] += wt * y[j];
      }
    }
  }

 private:
  const Codec& c_;
  size_t rec_;
  RecordDecoder decode_;
};

}  // namespace

std::unique_ptr<KeyScorer> make_portable_key_scorer(const Codec& codec) {
  if (codec.spec().quant == QuantKind::mse) return std::make_unique<MseLutScorer>(codec);
  return std::make_unique<DecodingScorer>(codec);
}

std::unique_ptr<ValueAccumulator> make_portable_value_accumulator(const Codec& codec) {
  return std::make_unique<DecodingAccumulator>(codec);
}

std::unique_ptr<KeyScorer> make_key_scorer(const Codec& codec, AttendPath path) {
  if (path == AttendPath::best || path == AttendPath::avx512)
    if (auto k = make_avx512_key_scorer(codec)) return k;
  if (path != AttendPath::portable)
    if (auto k = make_avx2_key_scorer(codec)) return k;
  return make_portable_key_scorer(codec);
}

std::unique_ptr<ValueAccumulator> make_value_accumulator(const Codec& codec, AttendPath path) {
  if (path == AttendPath::best || path == AttendPath::avx512)
    if (auto v = make_avx512_value_accumulator(codec)) return v;
  if (path != AttendPath::portable)
    if (auto v = make_avx2_value_accumulator(codec)) return v;
  return make_portable_value_accumulator(codec);
}

LayerKernels make_layer_kernels(const std::vector<Codec>& k, const std::vector<Codec>& v, AttendPath path) {
  LayerKernels lk;
  lk.rows_per_tile = 1 << 30;
  for (size_t h = 0; h < k.size(); ++h) {
    lk.k.push_back(make_key_scorer(k[h], path));
    lk.v.push_back(make_value_accumulator(v[h], path));
    lk.rows_per_tile = std::min({lk.rows_per_tile, lk.k.back()->rows_per_read(), lk.v.back()->rows_per_read()});
  }
  return lk;
}

}  // namespace tq::detail
