#pragma once
// Grouped (calibrated) records on the SIMD paths. The kernels work in a padded "chunk
// space": every coded run gets whole chunks of Isa::V::kWidth lanes, one after another
// (dropped runs, width 0, get none). Lanes of a run's last chunk past its end decode to
// whatever the bytes after its codes say, so nothing there is ever masked:
//  - keys: the query state is laid out in chunk space with zeros in the padding, so those
//    lanes add nothing to a score;
//  - values: the accumulators are copied into chunk space and back, and the padding
//    lanes, which collect the garbage, are never copied back.
// Per token and run the norm is read once: keys scale the run's level table by it (one
// multiply per table register instead of one per chunk), values fold it into the
// token's softmax weights, so the inner loops are unpack, look up, FMA. The loops are
// specialised on the run's lookup kind (how many level registers, or a gather), chosen
// once per run rather than per chunk.
// Isa (kernels_avx2.cpp, kernels_avx512.cpp) supplies V (as kernels_simd.h, plus
// hsum4: four horizontal sums sharing their shuffles), I (its integer register),
// half(p), Unpack(bits) giving a register of codes from a chunk's bytes (bits above the
// code may be set), and Lut(levels, bits) with kind(bits) in [0, kKinds), get<K>(codes)
// and with_norm<K>(n) (the table times n).
// Included only by files compiled with the matching instruction set.
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "grouped_layout.h"
#include "kernels_simd.h"

namespace tq::detail::simd {

// A coded run in chunk space.
template <class Isa>
struct GroupedChunkRun {
  int begin, size;  // coordinates in the code vector
  int pos, nc;      // first lane in chunk space, chunks
  int kind;         // Isa::Lut::kind(bits)
  bool log_norm;
  size_t norm_offset, code_offset, chunk_bytes;  // a chunk: kWidth codes
  typename Isa::Unpack unpack;
  typename Isa::Lut lut;
  float norm(const uint8_t* rec, const float* log_factor) const {
    return log_norm ? log_factor[rec[norm_offset]] : Isa::half(rec + norm_offset);
  }
};

// The layout's coded runs in chunk space; `padded` = lanes of chunk space.
template <class Isa>
std::vector<GroupedChunkRun<Isa>> chunk_runs(const GroupedLayout& layout, int& padded) {
  constexpr int W = Isa::V::kWidth;
  std::vector<GroupedChunkRun<Isa>> out;
  padded = 0;
  for (const GroupedRun& r : layout.runs()) {
    if (r.bits == 0) continue;
    const int nc = (r.size + W - 1) / W;
    out.push_back({r.begin, r.size, padded, nc, Isa::Lut::kind(r.bits), r.log_norm, r.norm_offset, r.code_offset,
                   static_cast<size_t>(r.bits) * W / 8, typename Isa::Unpack(r.bits),
                   typename Isa::Lut(r.levels.data(), r.bits)});
    padded += W * nc;
  }
  return out;
}

// Runs f.template operator()<K>() for the lookup kind K of a run.
template <class Isa, class F>
void with_kind(int kind, F&& f) {
  static_assert(Isa::Lut::kKinds <= 4);
  switch (kind) {
    case 0: return f.template operator()<0>();
    case 1: if constexpr (Isa::Lut::kKinds > 1) return f.template operator()<1>(); break;
    case 2: if constexpr (Isa::Lut::kKinds > 2) return f.template operator()<2>(); break;
    default: if constexpr (Isa::Lut::kKinds > 3) return f.template operator()<3>(); break;
  }
}

// scores[r][t] = <row r, record t>; q: RB rows of chunk space, row stride qs.
template <class Isa, int RB>
void grouped_score_rows(const std::vector<GroupedChunkRun<Isa>>& runs, const float* log_factor, size_t rec_bytes,
                        const float* q, size_t qs, const uint8_t* recs, int T, float* scores) {
  using V = typename Isa::V;
  constexpr int W = V::kWidth;
  for (int t = 0; t < T; ++t) {
    const uint8_t* rec = recs + rec_bytes * t;
    typename V::T acc[RB];
    for (int r = 0; r < RB; ++r) acc[r] = V::zero();
    for (const GroupedChunkRun<Isa>& g : runs)
      with_kind<Isa>(g.kind, [&]<int K>() {
        const auto lut = g.lut.template with_norm<K>(V::set1(g.norm(rec, log_factor)));
        const uint8_t* codes = rec + g.code_offset;
        const float* qc = q + g.pos;
#pragma GCC unroll 4
        for (int k = 0; k < g.nc; ++k, codes += g.chunk_bytes, qc += W) {
          const auto y = lut.template get<K>(g.unpack(codes));
          for (int r = 0; r < RB; ++r) acc[r] = V::fmadd(V::loadu(qc + qs * r), y, acc[r]);
        }
      });
    typename V::T four[4];
    float sums[4];
    for (int r = 0; r < 4; ++r) four[r] = r < RB ? acc[r] : V::zero();
    V::hsum4(four, sums);
    for (int r = 0; r < RB; ++r) scores[static_cast<size_t>(r) * T + t] = sums[r];
  }
}

// acc (RB rows of chunk space, stride as) += sum_t w[t][r] value_t, where nw holds per
// run [T][RB] weights already times the run's norm.
template <class Isa, int RB>
void grouped_add_rows(const std::vector<GroupedChunkRun<Isa>>& runs, size_t rec_bytes, const uint8_t* recs, int T,
                      const float* nw, float* acc, size_t as) {
  using V = typename Isa::V;
  constexpr int W = V::kWidth;
  for (const GroupedChunkRun<Isa>& g : runs) {
    with_kind<Isa>(g.kind, [&]<int K>() {
      for (int k = 0; k < g.nc; ++k) {
        float* col = acc + g.pos + W * k;
        typename V::T a[RB];
        for (int r = 0; r < RB; ++r) a[r] = V::loadu(col + as * r);
        const uint8_t* codes = recs + g.code_offset + g.chunk_bytes * k;
        const float* w = nw;
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t, codes += rec_bytes, w += RB) {
          const auto y = g.lut.template get<K>(g.unpack(codes));
          for (int r = 0; r < RB; ++r) a[r] = V::fmadd(V::set1(w[r]), y, a[r]);
        }
        for (int r = 0; r < RB; ++r) V::storeu(col + as * r, a[r]);
      }
    });
    nw += static_cast<size_t>(T) * RB;
  }
}

// Keys: the state is [q in chunk space (padding 0)][the constant q·μ], from
// Codec::prepare_query's [q (dim)][q·μ].
template <class Isa>
class GroupedScorer final : public KeyScorer {
 public:
  explicit GroupedScorer(const Codec& c)
      : layout_(static_cast<const GroupedMseQuantizer&>(c.quantizer())), D_(c.code_dim()), rec_(c.record_bytes()),
        runs_(chunk_runs<Isa>(layout_, P_)) {}
  size_t state_floats() const override { return P_ + 1; }
  void prepare(const float* q, float* state) const override {
    std::memset(state, 0, sizeof(float) * P_);
    for (const auto& g : runs_) std::memcpy(state + g.pos, q + g.begin, sizeof(float) * g.size);
    state[P_] = q[D_];
  }
  void score(const float* states, int R, const uint8_t* records, int T, float* scores) const override {
    const size_t sf = P_ + 1;
    for_row_blocks(R, [&]<int RB>(int r0) {
      grouped_score_rows<Isa, RB>(runs_, layout_.log_factor(), rec_, states + sf * r0, sf, records, T,
                                  scores + static_cast<size_t>(r0) * T);
    });
    for (int r = 0; r < R; ++r) {
      const float c = states[sf * r + P_];
      for (int t = 0; t < T; ++t) scores[static_cast<size_t>(r) * T + t] += c;
    }
  }

 private:
  GroupedLayout layout_;
  int D_, P_;
  size_t rec_;
  std::vector<GroupedChunkRun<Isa>> runs_;
};

template <class Isa>
class GroupedAccumulator final : public ValueAccumulator {
 public:
  explicit GroupedAccumulator(const Codec& c)
      : layout_(static_cast<const GroupedMseQuantizer&>(c.quantizer())), D_(c.code_dim()), rec_(c.record_bytes()),
        runs_(chunk_runs<Isa>(layout_, P_)) {}
  void add(const uint8_t* records, int T, const float* w, int R, float* acc) const override {
    thread_local std::vector<float> norms, nw, a;  // norms: [run][T]; a: acc in chunk space
    const size_t n_runs = runs_.size();
    norms.resize(n_runs * T);
    for (int t = 0; t < T; ++t)
      for (size_t j = 0; j < n_runs; ++j) norms[j * T + t] = runs_[j].norm(records + rec_ * t, layout_.log_factor());
    nw.resize(n_runs * T * 4);
    a.resize(static_cast<size_t>(R) * P_);
    for (int r = 0; r < R; ++r)
      for (const auto& g : runs_)
        std::memcpy(a.data() + static_cast<size_t>(P_) * r + g.pos, acc + static_cast<size_t>(D_) * r + g.begin,
                    sizeof(float) * g.size);
    for_row_blocks(R, [&]<int RB>(int r0) {
      for (size_t j = 0; j < n_runs; ++j)
        for (int t = 0; t < T; ++t)
          for (int r = 0; r < RB; ++r)
            nw[(j * T + t) * RB + r] = w[static_cast<size_t>(r0 + r) * T + t] * norms[j * T + t];
      grouped_add_rows<Isa, RB>(runs_, rec_, records, T, nw.data(), a.data() + static_cast<size_t>(P_) * r0, P_);
    });
    for (int r = 0; r < R; ++r)
      for (const auto& g : runs_)
        std::memcpy(acc + static_cast<size_t>(D_) * r + g.begin, a.data() + static_cast<size_t>(P_) * r + g.pos,
                    sizeof(float) * g.size);
  }

 private:
  GroupedLayout layout_;
  int D_, P_;
  size_t rec_;
  std::vector<GroupedChunkRun<Isa>> runs_;
};

// The grouped kernel for Base (KeyScorer or ValueAccumulator).
template <class Base, class Isa>
std::unique_ptr<Base> make_grouped(const Codec& c) {
  if constexpr (std::is_same_v<Base, KeyScorer>)
    return std::make_unique<GroupedScorer<Isa>>(c);
  else
    return std::make_unique<GroupedAccumulator<Isa>>(c);
}

}  // namespace tq::detail::simd
