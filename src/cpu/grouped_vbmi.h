#pragma once
// Grouped (calibrated) records on AVX-512 with VBMI, in the packed chunks of
// grouped_pack.h. Per chunk and token: one masked load of the chunk's byte window, vpermb
// puts each lane's two code bytes in its lane, vpsrlvd aligns the code, one vpermt2ps
// looks up its level (mixed chunks first fold (code & mask) | offset into one
// vpternlogd), and for keys one multiply applies the norm: a broadcast of the run's, or in mixed
// chunks a vpermps of the token's norm row (every coded run's norm, computed once per
// token and block, with one vpermi2b for all of a record's norms: NormRow). Runs of <= 4
// bits that start a chunk at a byte take turbo3's decode instead: one vpmultishiftqb of
// the 8 code bytes and a vpermps (kind 4). Chunks are sorted by kind, so the token loop runs one tight loop per
// kind with no branch per chunk. Keys: the query state is laid out in chunk order, zeros
// in padding lanes; values: single-run segments add into the accumulators in place (the
// last chunk masked), mixed chunks through a copy of their lanes. Values take no norm row:
// per tile of 16 records each run's 16 norms are one gather (lanes = records, as the
// keys' grouped_lanes.h), folded into the rows' weights, so a single-run chunk costs a
// token its decode and one FMA per row, as turbo3's values.
// Included only by kernels_avx512.cpp (V: its V16, for hsum4).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "grouped_lanes.h"
#include "grouped_pack.h"
#include "kernels_simd.h"

namespace tq::detail::vbmi {

// A PackedChunk (a segment) in registers' form.
struct alignas(64) Chunk {
  __m512i perm, shift, mask, offset, norm_run;
  __m512 t0, t1, t2, t3;
  __mmask64 bytes;
  int window, run, nc, stride;
  int begin;         // single-run: the coordinate of lane 0 (the run's lanes are in order)
  __mmask16 tail;    // single-run: the last chunk's lanes inside the run
  const float* levels;
  int n_mix = 0;               // mixed: its runs, mix_run[0]'s lanes first
  int mix_run[16];
  __mmask16 mix_lanes[16];     // mixed: each run's lanes
  explicit Chunk(const PackedChunk& c)
      : perm(_mm512_loadu_si512(c.perm)),
        shift(_mm512_loadu_si512(c.shift)),
        mask(_mm512_loadu_si512(c.mask)),
        offset(_mm512_loadu_si512(c.offset)),
        norm_run(_mm512_loadu_si512(c.norm_run)),
        t0(_mm512_loadu_ps(c.table)),
        t1(_mm512_loadu_ps(c.table + 16)),
        t2(_mm512_loadu_ps(c.table + 32)),
        t3(_mm512_loadu_ps(c.table + 48)),
        bytes(c.bytes),
        window(c.window),
        run(c.run),
        nc(c.nc),
        stride(c.stride),
        begin(c.coord[0]),
        tail(0),
        levels(c.levels) {
    for (int l = 0; l < 16; ++l)
      if (c.coord[16 * (nc - 1) + l] >= 0) tail |= 1 << l;
    for (int l = 0; l < 16 && c.kind == 1; ++l) {
      if (c.coord[l] < 0) continue;
      if (n_mix == 0 || mix_run[n_mix - 1] != c.norm_run[l]) mix_run[n_mix] = c.norm_run[l], mix_lanes[n_mix++] = 0;
      mix_lanes[n_mix - 1] |= 1 << l;
    }
    if (c.kind == 4) {  // shift becomes vpmultishiftqb's control: lane l's byte 0 from bit b*l
      const int b = c.stride / 2;
      alignas(64) int64_t ctrl[8];
      for (int j = 0; j < 8; ++j) ctrl[j] = int64_t(b * 2 * j) | (int64_t(b * (2 * j + 1)) << 32);
      shift = _mm512_load_si512(ctrl);
    }
  }
};

// Chunk k of segment c in a record, decoded to its levels (no norm).
template <int K>
inline __m512 lookup(const Chunk& c, int k, const uint8_t* rec) {
  // A 64-byte load mostly straddles two cache lines: windows of <= 16 bytes (every
  // single-run chunk: 16 codes of <= 8 bits) load 16 and broadcast them.
  const uint8_t* p = rec + c.window + c.stride * k;
  if constexpr (K == 4) {  // the bits above each code select the same level: the table repeats
    int64_t w;
    std::memcpy(&w, p, 8);
    return _mm512_permutexvar_ps(_mm512_multishift_epi64_epi8(c.shift, _mm512_set1_epi64(w)), c.t0);
  }
  const __m512i b = K == 1 && c.bytes >> 16 ? _mm512_maskz_loadu_epi8(c.bytes, p)
                                            : _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  __m512i code = _mm512_srlv_epi32(_mm512_permutexvar_epi8(c.perm, b), c.shift);
  if constexpr (K == 1) code = _mm512_ternarylogic_epi32(code, c.mask, c.offset, 0xEA);  // (code & mask) | offset
  if constexpr (K <= 1) return _mm512_permutex2var_ps(c.t0, code, c.t1);
  if constexpr (K == 2)
    return _mm512_mask_blend_ps(_mm512_test_epi32_mask(code, _mm512_set1_epi32(32)), _mm512_permutex2var_ps(c.t0, code, c.t1),
                                _mm512_permutex2var_ps(c.t2, code, c.t3));
  if constexpr (K == 3) return _mm512_i32gather_ps(_mm512_and_si512(code, c.mask), c.levels, 4);
}

// The same, norm applied; nt: the record's norm row.
template <int K>
inline __m512 decode(const Chunk& c, int k, const uint8_t* rec, const float* nt) {
  const __m512 n = K == 1 ? _mm512_permutexvar_ps(c.norm_run, _mm512_loadu_ps(nt)) : _mm512_set1_ps(nt[c.run]);
  return _mm512_mul_ps(lookup<K>(c, k, rec), n);
}

// Runs f.template operator()<K>(chunk) over the chunks, kind by kind.
template <class F>
inline void for_chunks(const std::vector<Chunk>& chunks, const int* count, F&& f) {
  const Chunk* c = chunks.data();
  for (int k = 0; k < count[0]; ++k) f.template operator()<0>(c++);
  for (int k = 0; k < count[1]; ++k) f.template operator()<1>(c++);
  for (int k = 0; k < count[2]; ++k) f.template operator()<2>(c++);
  for (int k = 0; k < count[3]; ++k) f.template operator()<3>(c++);
  for (int k = 0; k < count[4]; ++k) f.template operator()<4>(c++);
}

// A record's norms as one register, lane j = coded run j's norm, when there are at most
// 16 coded runs and their norm bytes lie in the record's first 128 bytes (SmolLM2's and
// Gemma 3's presets): one vpermi2b gathers every norm's bytes into its lane, a log byte c
// becomes 2^((c - 128)/16) as frac[c & 15] scaled by 2^((c >> 4) - 8) (vscalefps, exact:
// the scale is a power of two), an fp16 norm one vcvtph2ps. About ten instructions per
// record where the scalar loop took six per run.
struct NormRow {
  __m512i idx;       // byte 4j (+1): run j's norm byte(s) among the record's first 128
  __m512 frac;       // lane f: 2^(f/16)
  __mmask64 lo, hi;  // the norm bytes in [0, 64) and [64, 128)
  __mmask16 log_lanes;
  bool any_half, any_log;
};

inline __m512 norm_row(const NormRow& n, const uint8_t* rec) {
  const __m512i a = _mm512_maskz_loadu_epi8(n.lo, rec);
  const __m512i b = n.hi ? _mm512_maskz_loadu_epi8(n.hi, rec + 64) : _mm512_setzero_si512();
  const __m512i sel = _mm512_permutex2var_epi8(a, n.idx, b);
  __m512 row = _mm512_setzero_ps();
  if (n.any_log) row = log_norms(sel, n.frac);
  if (n.any_half) row = _mm512_mask_blend_ps(n.log_lanes, half_norms(sel), row);
  return row;
}

// What the key and value kernels share: the plan, its chunks and each block's norm rows.
class Packed {
 public:
  explicit Packed(const Codec& c)
      : layout_(static_cast<const GroupedMseQuantizer&>(c.quantizer())), D_(c.code_dim()), rec_(c.record_bytes()),
        plan_(pack_chunks(layout_)) {
    for (const PackedChunk& p : plan_.chunks) chunks_.emplace_back(p);
    for (const GroupedRun* r : plan_.runs) norm_at_.push_back({r->norm_offset, r->log_norm});
    init_norm_row();
  }
  int padded() const { return 16 * plan_.n_chunks; }
  int n_runs() const { return static_cast<int>(plan_.runs.size()); }
  // Floats per record in norms()' output.
  int norm_stride() const { return row_ ? 16 : n_runs(); }
  // out[t * norm_stride() + j] = run j's norm in record t; 16 floats of slack for the row loads.
  void norms(const uint8_t* recs, int T, std::vector<float>& out) const {
    const int nr = norm_stride();
    out.resize(static_cast<size_t>(T) * nr + 16);
    if (row_) {  // locals: stores through float* would otherwise reload every member per record
      const NormRow n = nrow_;
      const size_t rb = rec_;
      float* o = out.data();
      for (int t = 0; t < T; ++t, o += 16, recs += rb) _mm512_storeu_ps(o, norm_row(n, recs));
      return;
    }
    const float* lf = layout_.log_factor();
    for (int t = 0; t < T; ++t) {
      const uint8_t* rec = recs + rec_ * t;
      float* o = out.data() + static_cast<size_t>(t) * nr;
      for (int j = 0; j < nr; ++j)
        o[j] = norm_at_[j].log ? lf[rec[norm_at_[j].offset]] : load_half(rec + norm_at_[j].offset);
    }
  }

 protected:
  GroupedLayout layout_;
  int D_;
  size_t rec_;
  PackedPlan plan_;
  std::vector<Chunk> chunks_;
  struct NormAt {
    size_t offset;
    bool log;
  };
  std::vector<NormAt> norm_at_;
  NormRow nrow_{};
  bool log_exact_ = false;  // log_norms(, nrow_.frac) is the layout's table
  bool row_ = false;        // nrow_ applies

 private:
  void init_norm_row() {
    // The scaled table must be the layout's 256-entry one: every log code, bit for bit.
    alignas(64) float frac[16], row[16];
    for (int f = 0; f < 16; ++f) frac[f] = layout_.log_factor()[128 + f];
    nrow_.frac = _mm512_load_ps(frac);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int c = 0; c < 256; c += 16) {
      _mm512_store_ps(row, log_norms(_mm512_add_epi32(lane, _mm512_set1_epi32(c)), nrow_.frac));
      if (std::memcmp(row, &layout_.log_factor()[c], sizeof row) != 0) return;
    }
    log_exact_ = true;
    if (norm_at_.size() > 16) return;
    for (const NormAt& n : norm_at_)
      if (n.offset + (n.log ? 0 : 1) >= 128) return;
    alignas(64) uint8_t idx[64] = {};
    for (size_t j = 0; j < norm_at_.size(); ++j) {
      const NormAt& n = norm_at_[j];
      const int bytes = n.log ? 1 : 2;
      for (int i = 0; i < bytes; ++i) {
        const size_t o = n.offset + i;
        idx[4 * j + i] = static_cast<uint8_t>(o);
        (o < 64 ? nrow_.lo : nrow_.hi) |= uint64_t(1) << (o % 64);
      }
      if (n.log) nrow_.log_lanes |= 1 << j;
      (n.log ? nrow_.any_log : nrow_.any_half) = true;
    }
    nrow_.idx = _mm512_load_si512(idx);
    row_ = true;
  }
};

// scores[r][t] (row stride ss) = <row r, record t>; q: RB rows in chunk order, row stride
// qs. Two tokens per step: their chains (decode, FMAs, the horizontal sums) overlap, and
// they share each segment's constants.
template <class V, int RB>
void score_rows(const std::vector<Chunk>& chunks, const int* count, const float* norms, int nr, size_t rec_bytes,
                const float* q, size_t qs, const uint8_t* recs, int T, float* scores, size_t ss) {
  auto step = [&]<int TT>(int t) {
    __m512 acc[TT][4];
    for (int u = 0; u < TT; ++u)
      for (int r = 0; r < 4; ++r) acc[u][r] = _mm512_setzero_ps();
    const float* qc = q;
    for_chunks(chunks, count, [&]<int K>(const Chunk* c) {
      for (int k = 0; k < c->nc; ++k, qc += 16)
        for (int u = 0; u < TT; ++u) {
          const __m512 y = decode<K>(*c, k, recs + rec_bytes * (t + u), norms + static_cast<size_t>(nr) * (t + u));
          for (int r = 0; r < RB; ++r) acc[u][r] = _mm512_fmadd_ps(_mm512_loadu_ps(qc + qs * r), y, acc[u][r]);
        }
    });
    for (int u = 0; u < TT; ++u) {
      float sums[4];
      V::hsum4(acc[u], sums);
      for (int r = 0; r < RB; ++r) scores[ss * r + t + u] = sums[r];
    }
  };
  int t = 0;
  for (; t + 2 <= T; t += 2) step.template operator()<2>(t);
  if (t < T) step.template operator()<1>(t);
}

// Mixed chunk c's lane norms: lane l = the norm of its run; np: run 0's norm of the
// token, run j's ns floats on. One broadcast per run of the chunk.
inline __m512 lane_norms(const Chunk& c, const float* np, size_t ns) {
  __m512 n = _mm512_set1_ps(np[ns * c.mix_run[0]]);
  for (int m = 1; m < c.n_mix; ++m) n = _mm512_mask_mov_ps(n, c.mix_lanes[m], _mm512_set1_ps(np[ns * c.mix_run[m]]));
  return n;
}

// acc (RB rows of code space, stride as) += sum_t w[r][t] value_t, as turbo3's values: a
// single run's norm is folded into the weights, so a token costs its decode and one FMA
// per row. tw: the weights in tiles of 16 tokens, [tile][row][16] (constant offsets:
// row strides would spill registers), run j's weights times its norms at tw + set * j,
// the weights alone at `plain`; norms: [run][token], run stride ns (mixed chunks scale
// their lanes by them). Single-run segments add straight into acc (their lanes are the
// run's coordinates, the last chunk masked); mixed chunks into `mixed` (RB rows of 16
// lanes per mixed chunk, stride ms), which the caller copies from and back to acc.
template <int RB>
void add_rows(const std::vector<Chunk>& chunks, const int* count, const float* tw, size_t set, const float* plain,
              const float* norms, size_t ns, size_t rec_bytes, const uint8_t* recs, int T, float* acc, size_t as,
              float* mixed, size_t ms) {
  float* mcol = mixed;
  for_chunks(chunks, count, [&]<int K>(const Chunk* c) {
    for (int k = 0; k < c->nc; ++k) {
      const __mmask16 m = K == 1 || k + 1 < c->nc ? 0xFFFF : c->tail;
      float* col = K == 1 ? mcol : acc + c->begin + 16 * k;
      const size_t cs = K == 1 ? ms : as;
      __m512 a[2][RB];  // even and odd tokens: two FMA chains per row, as turbo3's
      for (int r = 0; r < RB; ++r) a[0][r] = _mm512_maskz_loadu_ps(m, col + cs * r), a[1][r] = _mm512_setzero_ps();
      const uint8_t* rec = recs;
      const float* wp = K == 1 ? plain : tw + set * c->run;
      auto token = [&](int u, int t0, int i) [[gnu::always_inline]] {
        __m512 y = lookup<K>(*c, k, rec + rec_bytes * i);
        if constexpr (K == 1) y = _mm512_mul_ps(y, lane_norms(*c, norms + t0 + i, ns));
        for (int r = 0; r < RB; ++r) a[u][r] = _mm512_fmadd_ps(_mm512_set1_ps(wp[16 * r + i]), y, a[u][r]);
      };
      for (int t0 = 0; t0 < T; t0 += 16, wp += 16 * RB, rec += 16 * rec_bytes) {
        const int n = std::min(16, T - t0);
        int i = 0;
        for (; i + 2 <= n; i += 2) token(0, t0, i), token(1, t0, i + 1);
        if (i < n) token(0, t0, i);
      }
      for (int r = 0; r < RB; ++r) _mm512_mask_storeu_ps(col + cs * r, m, _mm512_add_ps(a[0][r], a[1][r]));
      if (K == 1) mcol += 16;
    }
  });
}

// Keys: the state is [q in chunk order (padding 0)][the constant q·μ][q], from
// Codec::prepare_query's [q (dim)][q·μ]. Whole groups of 16 records go through
// grouped_lanes.h (lanes = records, q in coordinate order) when its norm conversion is
// exact, the rest through the chunks.
template <class V>
class PackedScorer final : public KeyScorer, Packed {
 public:
  explicit PackedScorer(const Codec& c) : Packed(c) {
    for (const GroupedRun* r : plan_.runs) {
      runs_.emplace_back(*r);
      if (runs_.size() > 1) runs_.back().follow(runs_[runs_.size() - 2]);
    }
  }
  size_t state_floats() const override { return padded() + 1 + D_; }
  void prepare(const float* q, float* state) const override {
    size_t lane = 0;
    for (const PackedChunk& c : plan_.chunks)
      for (int i : c.coord) state[lane++] = i < 0 ? 0.f : q[i];
    state[padded()] = q[D_];
    std::memcpy(state + padded() + 1, q, sizeof(float) * D_);
  }
  void score(const float* states, int R, const uint8_t* records, int T, float* scores) const override {
    const int T16 = log_exact_ ? T - T % 16 : 0;
    const uint8_t* tail = records + rec_ * T16;
    thread_local std::vector<float> nv;
    norms(tail, T - T16, nv);
    const size_t sf = state_floats();
    simd::for_row_blocks(R, [&]<int RB>(int r0) {
      const float* q = states + sf * r0;
      float* s = scores + static_cast<size_t>(r0) * T;
      for (int t = 0; t < T16; t += 16)
        lanes_score16<RB>(runs_, nrow_.frac, q + padded() + 1, sf, records + rec_ * t, rec_, s + t, T);
      score_rows<V, RB>(chunks_, plan_.count, nv.data(), norm_stride(), rec_, q, sf, tail, T - T16, s + T16, T);
    });
    for (int r = 0; r < R; ++r) {
      const float c = states[sf * r + padded()];
      for (int t = 0; t < T; ++t) scores[static_cast<size_t>(r) * T + t] += c;
    }
  }

 private:
  std::vector<LaneRun> runs_;
};

class PackedAccumulator final : public ValueAccumulator, Packed {
 public:
  explicit PackedAccumulator(const Codec& c) : Packed(c) {
    // The mixed chunks' lanes as spans of consecutive coordinates in consecutive lanes.
    int m = 0;
    for (const PackedChunk& p : plan_.chunks) {
      if (p.kind != 1) continue;
      for (int l = 0; l < 16; ++l) {
        const int i = p.coord[l];
        if (i < 0) continue;
        if (!spans_.empty() && spans_.back().chunk == m && spans_.back().coord + spans_.back().n == i &&
            spans_.back().lane + spans_.back().n == l)
          ++spans_.back().n;
        else
          spans_.push_back({m, l, i, 1});
      }
      ++m;
    }
    n_mixed_ = m;
  }
  void add(const uint8_t* records, int T, const float* w, int R, float* acc) const override {
    thread_local std::vector<float> nv, tw, mixed;  // mixed: the mixed chunks' lanes, [R][16 n_mixed]
    const int tiles = (T + 15) / 16, nr = n_runs();
    const size_t ns = 16 * static_cast<size_t>(tiles), set = 4 * ns;  // set: [tile][row <= 4][16]
    nv.resize(ns * nr);
    tw.resize(set * (nr + 1));
    tile_norms(records, T, nv.data(), ns);
    const size_t M = 16 * static_cast<size_t>(n_mixed_);
    if (M) mixed.assign(static_cast<size_t>(R) * M, 0.f);
    // Spans move with one expanding load (and one compress and masked store) per row.
    for (int r = 0; r < R; ++r)
      for (const Span& s : spans_) {
        float* v = mixed.data() + M * r + 16 * s.chunk;
        _mm512_storeu_ps(v, _mm512_mask_expandloadu_ps(_mm512_loadu_ps(v), s.mask(), acc + static_cast<size_t>(D_) * r + s.coord));
      }
    simd::for_row_blocks(R, [&]<int RB>(int r0) {
      tile_weights<RB>(w + static_cast<size_t>(T) * r0, T, nv.data(), ns, tw.data(), set);
      add_rows<RB>(chunks_, plan_.count, tw.data(), set, tw.data() + set * nr, nv.data(), ns, rec_, records, T,
                   acc + static_cast<size_t>(D_) * r0, D_, mixed.data() + M * r0, M);
    });
    for (int r = 0; r < R; ++r)
      for (const Span& s : spans_) {
        const __m512 v = _mm512_maskz_compress_ps(s.mask(), _mm512_loadu_ps(mixed.data() + M * r + 16 * s.chunk));
        _mm512_mask_storeu_ps(acc + static_cast<size_t>(D_) * r + s.coord, (1u << s.n) - 1, v);
      }
  }

 private:
  // Tokens [t0, t0 + 16) that lie below T.
  static __mmask16 tile_mask(int left) { return left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1); }
  // Lane i: run j's norm in record i (lanes outside m: 0), the 16 records' norm bytes in
  // one gather as the keys' lanes path; log bytes through the layout's table when
  // log_norms is not exactly it.
  __m512 run_norms(int j, const uint8_t* recs, __m512i idx, __mmask16 m) const {
    const NormAt& n = norm_at_[j];
    const __m512i b = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, recs + n.offset, 1);
    if (!n.log) return half_norms(b);
    if (log_exact_) return log_norms(b, nrow_.frac);
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, _mm512_and_si512(b, _mm512_set1_epi32(0xFF)),
                                    layout_.log_factor(), 4);
  }
  // out[ns * j + t] = run j's norm in record t, zeros from T to a whole tile.
  void tile_norms(const uint8_t* recs, int T, float* out, size_t ns) const {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(static_cast<int>(rec_)));
    for (int t0 = 0; t0 < T; t0 += 16, recs += 16 * rec_)
      for (int j = 0; j < n_runs(); ++j) _mm512_storeu_ps(out + ns * j + t0, run_norms(j, recs, idx, tile_mask(T - t0)));
  }
  // tw + set * j: the rows' weights (w: [RB][T]) times run j's norms (nv, as tile_norms');
  // tw + set * runs: the weights alone; both [tile][row][16], zeros past T.
  template <int RB>
  void tile_weights(const float* w, int T, const float* nv, size_t ns, float* tw, size_t set) const {
    const int nr = n_runs();
    for (int t0 = 0; t0 < T; t0 += 16) {
      float* o = tw + static_cast<size_t>(RB) * t0;
      for (int r = 0; r < RB; ++r) {
        const __m512 x = _mm512_maskz_loadu_ps(tile_mask(T - t0), w + static_cast<size_t>(T) * r + t0);
        _mm512_storeu_ps(o + set * nr + 16 * r, x);
        for (int j = 0; j < nr; ++j) _mm512_storeu_ps(o + set * j + 16 * r, _mm512_mul_ps(x, _mm512_loadu_ps(nv + ns * j + t0)));
      }
    }
  }
  struct Span {
    int chunk, lane, coord, n;
    __mmask16 mask() const { return static_cast<__mmask16>(((1u << n) - 1) << lane); }
  };
  std::vector<Span> spans_;
  int n_mixed_ = 0;
};

template <class Base, class V>
std::unique_ptr<Base> make_packed(const Codec& c) {
  if constexpr (std::is_same_v<Base, KeyScorer>)
    return std::make_unique<PackedScorer<V>>(c);
  else
    return std::make_unique<PackedAccumulator>(c);
}

}  // namespace tq::detail::vbmi
