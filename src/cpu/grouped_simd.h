#pragma once
// Grouped (calibrated) records on the SIMD paths: each coded run of the layout is one
// segment of the kernel bodies in kernels_simd.h, so scores and value sums run straight
// off the packed bytes like every other codec. A chunk is Isa::V::kWidth coordinates from
// the run's first one (runs start anywhere): unpack the codes, look the levels up, times
// the run's norm (fp16, or the log byte through a table). A run's last chunk may reach past
// its end; those lanes are zeroed, so they add nothing to a score and add zero to the
// next run's value sums. The kernels therefore read (queries) and rewrite unchanged
// (accumulators) up to one chunk past the last coordinate: both get a padded copy here.
// Dropped runs (width 0) are no segment at all.
// Isa (kernels_avx2.cpp, kernels_avx512.cpp) supplies V (as kernels_simd.h, plus mul),
// half(p), Unpack(bits) giving a register of codes from a chunk's bytes, Lut(levels, bits)
// giving their levels, and Tail(lanes) / Tail::keep(v) zeroing the lanes past a run.
// Included only by files compiled with the matching instruction set.
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "grouped_layout.h"
#include "kernels_simd.h"

namespace tq::detail::simd {

template <class Isa>
struct GroupedSeg {
  using V = typename Isa::V;
  static constexpr int W = V::kWidth;
  int c0, nc;  // nc: chunks of the run; c0 unused (runs start at col0)
  int col0;
  bool log_norm;
  size_t norm_offset, code_offset, chunk_bytes;  // a chunk: W codes
  const float* log_factor;                       // GroupedLayout's 256-entry table
  typename Isa::Unpack unpack;
  typename Isa::Lut lut;
  typename Isa::Tail tail;  // lanes of the last chunk inside the run
  GroupedSeg(const GroupedRun& r, const float* log_table)
      : c0(0), nc((r.size + W - 1) / W), col0(r.begin), log_norm(r.log_norm), norm_offset(r.norm_offset),
        code_offset(r.code_offset), chunk_bytes(static_cast<size_t>(r.bits) * W / 8), log_factor(log_table),
        unpack(r.bits), lut(r.levels.data(), r.bits), tail(r.size - W * (nc - 1)) {}
  static float norm(const uint8_t*) { return 1.f; }  // per run, in load
  typename V::T load(const uint8_t* rec, int k) const {
    const float n = log_norm ? log_factor[rec[norm_offset]] : Isa::half(rec + norm_offset);
    const auto y = V::mul(lut(unpack(rec + code_offset + chunk_bytes * k)), V::set1(n));
    return k + 1 < nc ? y : tail.keep(y);
  }
};

// The coded runs of a layout as segments; they point into `layout`.
template <class Isa>
std::vector<GroupedSeg<Isa>> grouped_segments(const GroupedLayout& layout) {
  std::vector<GroupedSeg<Isa>> segs;
  for (const GroupedRun& r : layout.runs())
    if (r.bits > 0) segs.emplace_back(r, layout.log_factor());
  return segs;
}

// Keys: state [q (dim)][the constant q·μ], as Codec::prepare_query gives.
template <class Isa>
class GroupedScorer final : public KeyScorer {
 public:
  using V = typename Isa::V;
  explicit GroupedScorer(const Codec& c)
      : layout_(static_cast<const GroupedMseQuantizer&>(c.quantizer())), D_(c.code_dim()),
        inner_(grouped_segments<Isa>(layout_), Layout{c.record_bytes(), false, D_}) {}
  size_t state_floats() const override { return D_ + 1; }
  void prepare(const float* q, float* state) const override { std::memcpy(state, q, sizeof(float) * (D_ + 1)); }
  void score(const float* states, int R, const uint8_t* records, int T, float* scores) const override {
    thread_local std::vector<float> q;
    q.assign(static_cast<size_t>(R) * D_ + V::kWidth, 0.f);  // + one chunk read past the last row
    for (int r = 0; r < R; ++r)
      std::memcpy(q.data() + static_cast<size_t>(D_) * r, states + (D_ + 1) * static_cast<size_t>(r), sizeof(float) * D_);
    inner_.score(q.data(), R, records, T, scores);
    for (int r = 0; r < R; ++r) {
      const float c = states[(D_ + 1) * static_cast<size_t>(r) + D_];
      for (int t = 0; t < T; ++t) scores[static_cast<size_t>(r) * T + t] += c;
    }
  }

 private:
  GroupedLayout layout_;
  int D_;
  Scorer<GroupedSeg<Isa>> inner_;
};

template <class Isa>
class GroupedAccumulator final : public ValueAccumulator {
 public:
  using V = typename Isa::V;
  explicit GroupedAccumulator(const Codec& c)
      : layout_(static_cast<const GroupedMseQuantizer&>(c.quantizer())), D_(c.code_dim()),
        inner_(grouped_segments<Isa>(layout_), Layout{c.record_bytes(), false, D_}) {}
  void add(const uint8_t* records, int T, const float* w, int R, float* acc) const override {
    thread_local std::vector<float> a;  // acc + one chunk, so the last run's tail stays in here
    const size_t n = static_cast<size_t>(R) * D_;
    a.resize(n + V::kWidth);
    std::memcpy(a.data(), acc, sizeof(float) * n);
    inner_.add(records, T, w, R, a.data());
    std::memcpy(acc, a.data(), sizeof(float) * n);
  }

 private:
  GroupedLayout layout_;
  int D_;
  Accumulator<GroupedSeg<Isa>> inner_;
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
