#pragma once
// The SIMD kernel bodies, written once over a "segment" decoder Seg that turns one chunk
// of Seg::V::kWidth packed coordinates into a register of floats (kernels_avx2.cpp: 8
// lanes, kernels_avx512.cpp: 16). Keys: for each token every row accumulates FMAs
// against the same decoded register, then one horizontal sum per row. Values: per
// chunk, the rows' accumulators stay in registers across the block's tokens.
// Included only by files compiled with the matching instruction set.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels.h"

namespace tq::detail::simd {

// Scale of a whole record (the mse norm, else 1) and the record geometry.
struct Layout {
  size_t rec;
  bool normed;
  int dim;  // code dimension, a multiple of the vector width
};

// One token's dot products: acc[r] holds row r's lane-wise products with the record.
// NC > 0: one segment of exactly NC chunks, known at compile time (head_dim 64/128/256),
// so addresses are constant offsets; NC = 0: any segments, counts read at run time.
template <int RB, int NC, class Seg>
inline void token_dots(const std::vector<Seg>& segs, size_t sf, const float* states, const uint8_t* rec,
                       typename Seg::V::T* acc) {
  using V = typename Seg::V;
  constexpr int W = V::kWidth;
  for (int r = 0; r < RB; ++r) acc[r] = V::zero();
  for (const Seg& sg : segs)
#pragma GCC unroll 4
    for (int k = 0; k < (NC ? NC : sg.nc); ++k) {
      const auto y = sg.load(rec, k);
      const float* q = states + W * ((NC ? 0 : sg.c0) + k);
      for (int r = 0; r < RB; ++r) acc[r] = V::fmadd(V::loadu(q + sf * r), y, acc[r]);
    }
}

// Segments that score W whole records at once with lanes = tokens (one segment of NC
// chunks): seg.token_lanes<RB, NC>(states, sf, records, record bytes, sum) sets lane i
// of sum[r] to row r's dot product with record i, before the norm.
template <class Seg>
concept TokenLanes = Seg::kTokenLanes;

// Whole groups of W tokens are reduced together (V::transpose_sum: lane i = token i's
// sum), so the horizontal sums cost a few shuffles per token instead of a tree each; the
// tail goes token by token.
template <int RB, int NC, class Seg>
void score_rows(const std::vector<Seg>& segs, const Layout& L, const float* states, const uint8_t* recs, int T,
                float* scores) {
  using V = typename Seg::V;
  constexpr int W = V::kWidth;
  const size_t sf = NC ? W * NC : L.dim;
  int t = 0;
  for (; t + W <= T; t += W) {
    typename V::T sum[RB];
    alignas(64) float norm[W];
    if constexpr (NC > 0 && TokenLanes<Seg>) {
      segs[0].template token_lanes<RB, NC>(states, sf, recs + L.rec * t, L.rec, sum);
    } else {
      typename V::T part[RB][W], acc[RB];
      for (int i = 0; i < W; ++i) {
        token_dots<RB, NC>(segs, sf, states, recs + L.rec * (t + i), acc);
        for (int r = 0; r < RB; ++r) part[r][i] = acc[r];
      }
      for (int r = 0; r < RB; ++r) sum[r] = V::transpose_sum(part[r]);
    }
    if (L.normed) {
      Seg::norms(recs + L.rec * t, L.rec, W, norm);
      const auto n = V::loadu(norm);
      for (int r = 0; r < RB; ++r) sum[r] = V::mul(sum[r], n);
    }
    for (int r = 0; r < RB; ++r) V::storeu(scores + static_cast<size_t>(r) * T + t, sum[r]);
  }
  for (; t < T; ++t) {
    const uint8_t* rec = recs + L.rec * t;
    typename V::T acc[RB];
    token_dots<RB, NC>(segs, sf, states, rec, acc);
    const float s = L.normed ? Seg::norm(rec) : 1.f;
    for (int r = 0; r < RB; ++r) scores[static_cast<size_t>(r) * T + t] = s * V::hsum(acc[r]);
  }
}

// wt: the weights (record norm folded in) in tiles of W tokens, [tile][RB][W], so a
// token's RB weights are constant offsets from one pointer (row strides would spill
// registers) and the tiles are built with whole-vector multiplies (tile_weights).
template <int RB, int NC, class Seg>
void add_rows(const std::vector<Seg>& segs, const Layout& L, const uint8_t* recs, int T, const float* wt,
              float* acc) {
  using V = typename Seg::V;
  constexpr int W = V::kWidth;
  const size_t stride = NC ? W * NC : L.dim;
  for (const Seg& sg : segs)
    for (int k = 0; k < (NC ? NC : sg.nc); ++k) {
      float* col = acc + W * static_cast<size_t>((NC ? 0 : sg.c0) + k);
      // Even and odd tokens in separate accumulators: two chains of T/2 FMAs per row.
      typename V::T a[RB], b[RB];
      for (int r = 0; r < RB; ++r) a[r] = V::loadu(col + stride * r), b[r] = V::zero();
      const uint8_t* rec = recs;
      const float* w = wt;
      for (int t0 = 0; t0 < T; t0 += W, w += RB * W) {
        const int n = std::min(W, T - t0);
        int i = 0;
#pragma GCC unroll 2
        for (; i + 2 <= n; i += 2, rec += 2 * L.rec) {
          const auto y0 = sg.load(rec, k), y1 = sg.load(rec + L.rec, k);
          for (int r = 0; r < RB; ++r) {
            a[r] = V::fmadd(V::set1(w[W * r + i]), y0, a[r]);
            b[r] = V::fmadd(V::set1(w[W * r + i + 1]), y1, b[r]);
          }
        }
        if (i < n) {
          const auto y = sg.load(rec, k);
          for (int r = 0; r < RB; ++r) a[r] = V::fmadd(V::set1(w[W * r + i]), y, a[r]);
          rec += L.rec;
        }
      }
      for (int r = 0; r < RB; ++r) V::storeu(col + stride * r, V::add(a[r], b[r]));
    }
}

// add_rows' weights: wt[tile][r][i] = w[r][t0 + i] · norm[t0 + i] (w: RB rows of T), the
// last tile's lanes past T left unset (add_rows stops at T).
template <class V, int RB>
void tile_weights(const float* w, const float* norm, int T, float* wt) {
  constexpr int W = V::kWidth;
  int t0 = 0;
  for (; t0 + W <= T; t0 += W, wt += RB * W) {
    const auto n = V::loadu(norm + t0);
    for (int r = 0; r < RB; ++r) V::storeu(wt + W * r, V::mul(V::loadu(w + static_cast<size_t>(T) * r + t0), n));
  }
  for (int r = 0; r < RB; ++r)
    for (int i = 0; t0 + i < T; ++i) wt[W * r + i] = w[static_cast<size_t>(T) * r + t0 + i] * norm[t0 + i];
}

// Runs f.template operator()<RB>(r0) over row blocks of at most 4 rows.
template <class F>
void for_row_blocks(int R, F&& f) {
  int r0 = 0;
  for (; R - r0 >= 4; r0 += 4) f.template operator()<4>(r0);
  if (R - r0 == 3) f.template operator()<3>(r0);
  if (R - r0 == 2) f.template operator()<2>(r0);
  if (R - r0 == 1) f.template operator()<1>(r0);
}

// Runs f.template operator()<NC>() with NC the compile-time chunk count when the layout
// is one segment of 4, 8, 16 or 32 chunks, else NC = 0.
template <class Seg, class F>
void with_chunks(const std::vector<Seg>& segs, F&& f) {
  const int nc = segs.size() == 1 ? segs[0].nc : 0;
  if (nc == 4) return f.template operator()<4>();
  if (nc == 8) return f.template operator()<8>();
  if (nc == 16) return f.template operator()<16>();
  if (nc == 32) return f.template operator()<32>();
  f.template operator()<0>();
}

template <class Seg>
class Scorer final : public KeyScorer {
 public:
  Scorer(std::vector<Seg> segs, Layout L) : segs_(std::move(segs)), L_(L) {}
  size_t state_floats() const override { return L_.dim; }
  void prepare(const float* q, float* state) const override { std::memcpy(state, q, sizeof(float) * L_.dim); }
  void score(const float* states, int R, const uint8_t* records, int T, float* scores) const override {
    with_chunks(segs_, [&]<int NC>() {
      for_row_blocks(R, [&]<int RB>(int r0) {
        score_rows<RB, NC>(segs_, L_, states + static_cast<size_t>(L_.dim) * r0, records, T,
                           scores + static_cast<size_t>(r0) * T);
      });
    });
  }

 private:
  std::vector<Seg> segs_;
  Layout L_;
};

template <class Seg>
class Accumulator final : public ValueAccumulator {
 public:
  Accumulator(std::vector<Seg> segs, Layout L) : segs_(std::move(segs)), L_(L) {}
  void add(const uint8_t* records, int T, const float* w, int R, float* acc) const override {
    constexpr int W = Seg::V::kWidth;
    thread_local std::vector<float> norm, wt;
    norm.resize(T);
    wt.resize(static_cast<size_t>(4) * W * ((T + W - 1) / W));
    if (L_.normed)
      Seg::norms(records, L_.rec, T, norm.data());
    else
      std::fill(norm.begin(), norm.end(), 1.f);
    with_chunks(segs_, [&]<int NC>() {
      for_row_blocks(R, [&]<int RB>(int r0) {
        tile_weights<typename Seg::V, RB>(w + static_cast<size_t>(r0) * T, norm.data(), T, wt.data());
        add_rows<RB, NC>(segs_, L_, records, T, wt.data(), acc + static_cast<size_t>(L_.dim) * r0);
      });
    });
  }

 private:
  std::vector<Seg> segs_;
  Layout L_;
};

}  // namespace tq::detail::simd
