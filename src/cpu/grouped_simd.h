#pragma once
// Grouped (calibrated) records on the SIMD paths: each tile of records is decoded to
// floats one register at a time (unpack the codes, look the levels up, times the group's
// norm), then the f32 kernel bodies of kernels_simd.h run over the decoded tile, so its
// decode is shared by every row. Groups need not be multiples of the width: a run's last
// register spills past its end into the next run's coordinates, which that run then
// overwrites (runs are written in coordinate order and each, dropped ones included,
// writes at least one whole register); the tile's last run spills into padding.
// Isa (kernels_avx2.cpp, kernels_avx512.cpp) supplies V (as kernels_simd.h, plus mul),
// Unpack(bits) giving a register of codes from the chunk's bytes, and Lut(levels, bits)
// giving their levels. Included only by files compiled with the matching instruction set.
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "grouped_layout.h"
#include "kernels_simd.h"

namespace tq::detail::simd {

// Reads already decoded floats: record t of a tile is floats [dim*t, dim*(t+1)).
template <class V_>
struct FloatSeg {
  using V = V_;
  int c0, nc;
  static float norm(const uint8_t*) { return 1.f; }
  typename V::T load(const uint8_t* rec, int k) const {
    return V::loadu(reinterpret_cast<const float*>(rec) + V::kWidth * k);
  }
};

template <class Isa>
class GroupedDecoder {
 public:
  using V = typename Isa::V;
  static constexpr int W = V::kWidth;
  explicit GroupedDecoder(const GroupedMseQuantizer& q) : layout_(q) {
    for (const GroupedRun& r : layout_.runs())
      runs_.push_back({&r, (r.size + W - 1) / W, static_cast<size_t>(r.bits) * W / 8, typename Isa::Unpack(r.bits),
                       typename Isa::Lut(r.levels.data(), r.bits)});
  }
  GroupedDecoder(const GroupedDecoder&) = delete;  // runs_ point into layout_
  int dim() const { return layout_.dim(); }

  // T records (rec_bytes apart) -> buf: T x dim floats.
  const float* decode_tile(const uint8_t* records, size_t rec_bytes, int T, std::vector<float>& buf) const {
    const int D = dim();
    buf.resize(static_cast<size_t>(T) * D + W);  // + the last spill
    for (int t = 0; t < T; ++t) decode(records + rec_bytes * t, buf.data() + static_cast<size_t>(D) * t);
    return buf.data();
  }

 private:
  struct Run {
    const GroupedRun* g;
    int chunks;
    size_t chunk_bytes;  // W codes of g->bits bits
    typename Isa::Unpack unpack;
    typename Isa::Lut lut;
  };
  void decode(const uint8_t* rec, float* y) const {
    for (const Run& r : runs_) {
      float* out = y + r.g->begin;
      if (r.g->bits == 0) {
        for (int k = 0; k < r.chunks; ++k) V::storeu(out + W * k, V::zero());
        continue;
      }
      const auto n = V::set1(layout_.norm(*r.g, rec));
      const uint8_t* codes = rec + r.g->code_offset;
      for (int k = 0; k < r.chunks; ++k, codes += r.chunk_bytes) V::storeu(out + W * k, V::mul(r.lut(r.unpack(codes)), n));
    }
  }
  GroupedLayout layout_;
  std::vector<Run> runs_;
};

// Keys: state [q (dim)][the constant q·μ], as Codec::prepare_query gives.
template <class Isa>
class GroupedScorer final : public KeyScorer {
 public:
  using V = typename Isa::V;
  explicit GroupedScorer(const Codec& c)
      : dec_(static_cast<const GroupedMseQuantizer&>(c.quantizer())), rec_(c.record_bytes()), D_(c.code_dim()),
        inner_({FloatSeg<V>{0, D_ / V::kWidth}}, Layout{sizeof(float) * D_, false, D_}) {}
  int rows_per_read() const override { return kDecodeRows; }
  size_t state_floats() const override { return D_ + 1; }
  void prepare(const float* q, float* state) const override { std::memcpy(state, q, sizeof(float) * (D_ + 1)); }
  void score(const float* states, int R, const uint8_t* records, int T, float* scores) const override {
    thread_local std::vector<float> y, q;
    const float* tile = dec_.decode_tile(records, rec_, T, y);
    q.resize(static_cast<size_t>(R) * D_);
    for (int r = 0; r < R; ++r) std::memcpy(q.data() + static_cast<size_t>(D_) * r, states + (D_ + 1) * static_cast<size_t>(r), sizeof(float) * D_);
    inner_.score(q.data(), R, reinterpret_cast<const uint8_t*>(tile), T, scores);
    for (int r = 0; r < R; ++r) {
      const float c = states[(D_ + 1) * static_cast<size_t>(r) + D_];
      for (int t = 0; t < T; ++t) scores[static_cast<size_t>(r) * T + t] += c;
    }
  }

 private:
  GroupedDecoder<Isa> dec_;
  size_t rec_;
  int D_;
  Scorer<FloatSeg<V>> inner_;
};

template <class Isa>
class GroupedAccumulator final : public ValueAccumulator {
 public:
  using V = typename Isa::V;
  explicit GroupedAccumulator(const Codec& c)
      : dec_(static_cast<const GroupedMseQuantizer&>(c.quantizer())), rec_(c.record_bytes()), D_(c.code_dim()),
        inner_({FloatSeg<V>{0, D_ / V::kWidth}}, Layout{sizeof(float) * D_, false, D_}) {}
  int rows_per_read() const override { return kDecodeRows; }
  void add(const uint8_t* records, int T, const float* w, int R, float* acc) const override {
    thread_local std::vector<float> y;
    const float* tile = dec_.decode_tile(records, rec_, T, y);
    inner_.add(reinterpret_cast<const uint8_t*>(tile), T, w, R, acc);
  }

 private:
  GroupedDecoder<Isa> dec_;
  size_t rec_;
  int D_;
  Accumulator<FloatSeg<V>> inner_;
};

// The grouped kernel for Base (KeyScorer or ValueAccumulator), or nullptr when the code
// dimension is not a multiple of the width.
template <class Base, class Isa>
std::unique_ptr<Base> make_grouped(const Codec& c) {
  if (c.code_dim() % Isa::V::kWidth != 0) return nullptr;
  if constexpr (std::is_same_v<Base, KeyScorer>)
    return std::make_unique<GroupedScorer<Isa>>(c);
  else
    return std::make_unique<GroupedAccumulator<Isa>>(c);
}

}  // namespace tq::detail::simd
