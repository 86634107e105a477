// Fast attention driver. Work is split into items (KV head, query tile, context chunk):
//  - a query tile holds a few consecutive queries; with the KV head's GQA group of query
//    heads they form up to ~8 rows that share every record read;
//  - a context chunk is a run of whole cache blocks (split-K), so one long sequence still
//    spreads over all threads. Each item keeps its own online softmax (max m, sum l,
//    unnormalized acc in rotated space); items of a tile are merged with the usual
//    log-sum-exp rule  M = max m_c, l = sum l_c e^(m_c - M), acc = sum acc_c e^(m_c - M),
//    and each row is rotated back once (Codec::finish).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention_common.h"
#include "kernels.h"
#include "turboquant/thread_pool.h"

namespace tq {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kMinChunkTokens = 256;  // below this a split costs more than it saves

struct Tile {
  int kv_head, i0, i1;  // queries [i0, i1)
  int lo, hi;           // union of the rows' visible keys [lo, hi]
  int chunk_tokens, n_chunks, part0;  // chunk c covers [lo + c*chunk_tokens, ...)
};

struct Layout {
  int H, D, Dc, G, bt;
  size_t k_rec, v_rec, k_block, v_block;
  const uint8_t *k_pool, *v_pool;
  const std::vector<int32_t>* blocks;
  const RopeFrames* frames;  // keys stored in RoPE frames (rope_frame.h), else nullptr
};

// A head's records of one block are a short run (SmolLM2's turbo3 keys: 32 x 26 bytes),
// and the blocks of a head lie n_kv_heads runs apart, too short and scattered for the
// hardware prefetcher: at 16K tokens the cache far exceeds L3, and without these hints
// the first load of every record stalled on memory. Prefetching a block ahead hides it.
constexpr int kPrefetchBlocks = 2;

// GCC 12 deletes a loop whose body is only __builtin_prefetch (no side effects, so dead
// code), hence the volatile asm on x86.
void prefetch_run(const uint8_t* p, size_t bytes) {
  for (size_t i = 0; i < bytes; i += 64) {
#if defined(__x86_64__)
    asm volatile("prefetcht0 %0" : : "m"(p[i]));
#else
    __builtin_prefetch(p + i);
#endif
  }
}

// One side's run of block blk (nothing past c_hi). The key run is asked for before the
// scores and the value run before the sums, not both at once: a burst of both runs' lines
// (26 at SmolLM2's turbo3) outnumbers the core's line-fill buffers, and the prefetches
// then stalled (perf: most of run_item's own time).
void prefetch_side(const Layout& L, const uint8_t* pool, size_t block_bytes, size_t rec, int kv_head, int blk,
                   int c_hi) {
  if (blk * L.bt > c_hi) return;
  const size_t phys = static_cast<size_t>((*L.blocks)[blk]);
  prefetch_run(pool + block_bytes * phys + rec * static_cast<size_t>(kv_head) * L.bt, rec * L.bt);
}

// One work item: rows of `tile` over keys [c_lo, c_hi], results into m, l, acc. `states`
// holds the rows' scorer states per RoPE frame from the frame of c_lo on (one set without frames).
void run_item(const Layout& L, const Tile& tile, int c_lo, int c_hi, int q_pos0, const AttentionParams& p,
              const detail::KeyScorer& ks, const detail::ValueAccumulator& va, const float* states,
              float* m, float* l, float* acc) {
  const int rows = (tile.i1 - tile.i0) * L.G;
  std::fill(m, m + rows, kNegInf);
  std::fill(l, l + rows, 0.f);
  std::fill(acc, acc + static_cast<size_t>(rows) * L.Dc, 0.f);
  std::vector<float> s(static_cast<size_t>(rows) * L.bt), w(s.size());
  std::vector<int> row_lo(rows), row_hi(rows);
  for (int r = 0; r < rows; ++r) {
    const int pos = q_pos0 + tile.i0 + r / L.G;
    row_lo[r] = detail::first_key(pos, p.window);
    row_hi[r] = pos;
  }
  const size_t frame_floats = ks.state_floats() * rows;
  const int frame0 = L.frames ? L.frames->frame(c_lo) : 0;
  for (int t0 = c_lo; t0 <= c_hi;) {
    const int blk = t0 / L.bt;
    int t1 = std::min(c_hi + 1, (blk + 1) * L.bt);  // [t0, t1) inside one block and one frame
    const int frame = L.frames ? L.frames->frame(t0) : 0;
    if (L.frames) t1 = std::min(t1, L.frames->frame_start(frame + 1));
    const int T = t1 - t0;
    const size_t phys = static_cast<size_t>((*L.blocks)[blk]);
    const size_t slot = static_cast<size_t>(tile.kv_head) * L.bt + t0 % L.bt;
    prefetch_side(L, L.k_pool, L.k_block, L.k_rec, tile.kv_head, blk + kPrefetchBlocks, c_hi);
    ks.score(states + frame_floats * (frame - frame0), rows, L.k_pool + L.k_block * phys + L.k_rec * slot, T, s.data());
    for (int r = 0; r < rows; ++r) {
      float* sr = s.data() + static_cast<size_t>(r) * T;
      float* wr = w.data() + static_cast<size_t>(r) * T;
      if (t0 < row_lo[r] || t1 - 1 > row_hi[r] || p.softcap > 0.f)  // edge of the mask, or softcap
        for (int t = 0; t < T; ++t) {
          const int pos = t0 + t;
          sr[t] = (pos < row_lo[r] || pos > row_hi[r]) ? kNegInf : detail::cap_score(sr[t], p.softcap);
        }
      const float mx = std::max(m[r], detail::max_of(sr, T));
      if (mx == kNegInf) {  // nothing visible to this row here
        std::fill(wr, wr + T, 0.f);
        continue;
      }
      if (mx > m[r]) {
        const float corr = std::exp(m[r] - mx);
        l[r] *= corr;
        float* a = acc + static_cast<size_t>(r) * L.Dc;
        for (int j = 0; j < L.Dc; ++j) a[j] *= corr;
        m[r] = mx;
      }
      l[r] += detail::exp_and_sum(sr, T, mx, wr);
    }
    prefetch_side(L, L.v_pool, L.v_block, L.v_rec, tile.kv_head, blk + kPrefetchBlocks, c_hi);
    va.add(L.v_pool + L.v_block * phys + L.v_rec * slot, T, w.data(), rows, acc);
    t0 = t1;
  }
}

}  // namespace

bool attend_has_simd() { return detail::avx2_compiled() || detail::avx512_compiled(); }

bool attend_path_compiled(AttendPath path) {
  switch (path) {
    case AttendPath::avx512: return detail::avx512_compiled();
    case AttendPath::avx2: return detail::avx2_compiled();
    default: return true;
  }
}

void attend(const KvCache& cache, int layer, int seq, const float* q, int n_q, int q_pos0, const AttentionParams& p,
            float* out, ThreadPool* pool) {
  attend(cache, layer, seq, q, n_q, q_pos0, p, out, pool, AttendOptions{});
}

void attend(const KvCache& cache, int layer, int seq, const float* q, int n_q, int q_pos0, const AttentionParams& p,
            float* out, ThreadPool* pool, const AttendOptions& opt) {
  detail::check_attend_args(cache, layer, seq, q, n_q, q_pos0, p, out);
  if (n_q == 0) return;
  const KvCacheConfig& cfg = cache.config();
  Layout L;
  L.H = cfg.n_kv_heads;
  L.D = cfg.head_dim;
  L.Dc = cache.v_codec(layer, 0).code_dim();
  L.G = p.n_heads / L.H;
  L.bt = cfg.block_tokens;
  L.k_rec = cache.k_record_bytes(layer);
  L.v_rec = cache.v_record_bytes(layer);
  L.k_block = cache.k_block_bytes(layer);
  L.v_block = cache.v_block_bytes(layer);
  L.k_pool = cache.k_pool(layer);
  L.v_pool = cache.v_pool(layer);
  L.blocks = &cache.block_table(seq);
  L.frames = cache.plan().key_frames(layer);
  const int threads = pool ? pool->size() : 1;

  // Kernels per KV head, built once per cache (KvCache::attend_kernels).
  const detail::LayerKernels& kernels = cache.attend_kernels(layer, opt.path);

  // Queries: rotated once per row and frame (Codec::prepare_queries, P⁻ᵀ read once per block),
  // the score scale folded in. With RoPE frames each frame's copy is turned back by the
  // frame's start, like the frame's keys; without, there is one frame and no turn.
  const size_t qsf = cache.k_codec(layer, 0).query_state_floats();
  const int n_rows = n_q * p.n_heads;
  const int n_frames = L.frames ? L.frames->frame(q_pos0 + n_q - 1) + 1 : 1;
  const size_t frame_floats = static_cast<size_t>(n_rows) * qsf;  // qstate: [frame][row][qsf]
  std::vector<float> qstate(frame_floats * n_frames);
  // Tasks: per KV head, its (frame, row) pairs in blocks of up to kPrepBlock, smaller where
  // that leaves a thread idle (decode of a model with one KV head).
  constexpr int kPrepBlock = 16;
  const int rows_per_kv = n_q * L.G, pairs_per_kv = n_frames * rows_per_kv;
  const int block = std::clamp((L.H * pairs_per_kv + threads - 1) / threads, 1, kPrepBlock);
  const int tasks_per_kv = (pairs_per_kv + block - 1) / block;
  auto prep = [&](int task) {
    const int h = task / tasks_per_kv, v0 = task % tasks_per_kv * block;
    const int n = std::min(block, pairs_per_kv - v0);
    std::vector<float> turned(L.frames ? static_cast<size_t>(n) * L.D : 0);
    const float* qs[kPrepBlock];
    float* states[kPrepBlock];
    for (int v = 0; v < n; ++v) {
      const int f = (v0 + v) / rows_per_kv, r = (v0 + v) % rows_per_kv;
      const int row = r / L.G * p.n_heads + h * L.G + r % L.G;
      qs[v] = q + static_cast<size_t>(row) * L.D;
      if (L.frames) {
        float* t = turned.data() + static_cast<size_t>(v) * L.D;
        std::copy_n(qs[v], L.D, t);
        cache.plan().key_turn(layer, f).apply(t);
        qs[v] = t;
      }
      states[v] = qstate.data() + frame_floats * f + qsf * row;
    }
    cache.k_codec(layer, h).prepare_queries(n, qs, states);
    for (int v = 0; v < n; ++v)
      for (size_t i = 0; i < qsf; ++i) states[v][i] *= p.scale;
  };
  const int prep_tasks = L.H * tasks_per_kv;
  if (pool && prep_tasks > 1)
    pool->parallel_for(prep_tasks, prep);
  else
    for (int t = 0; t < prep_tasks; ++t) prep(t);

  // Tiles and their chunks. Rows per tile: as many as every head's kernels share a read over.
  const int q_per_tile = std::max(1, kernels.rows_per_tile / L.G);
  std::vector<Tile> tiles;
  for (int g = 0; g < L.H; ++g)
    for (int i0 = 0; i0 < n_q; i0 += q_per_tile) {
      Tile t{};
      t.kv_head = g;
      t.i0 = i0;
      t.i1 = std::min(n_q, i0 + q_per_tile);
      t.lo = detail::first_key(q_pos0 + i0, p.window);
      t.hi = q_pos0 + t.i1 - 1;
      tiles.push_back(t);
    }
  const int want_items = threads > 1 ? 4 * threads : 1;
  const int n_tiles = static_cast<int>(tiles.size());
  int chunks_per_tile = std::max(1, (want_items + n_tiles - 1) / n_tiles);
  // Equal tiles (decode) split into equal chunks: a count of items that the threads divide
  // leaves none idle at the end (SmolLM2: 3 KV heads x 3 chunks on 2 threads ran 5 + 4).
  while (threads > 1 && (n_tiles * chunks_per_tile) % threads != 0 && chunks_per_tile < 2 * want_items) ++chunks_per_tile;
  // Sink positions are read from the cache's exact store in the merge, not from records.
  const int sinks = std::min(cache.sink_tokens(), cache.length(layer, seq));
  int n_parts = 0;
  for (Tile& t : tiles) {
    t.lo = std::max(t.lo, sinks);
    const int range = std::max(0, t.hi - t.lo + 1);
    int ct = opt.split_tokens > 0 ? opt.split_tokens
                                  : std::max(kMinChunkTokens, (range + chunks_per_tile - 1) / chunks_per_tile);
    ct = (ct + L.bt - 1) / L.bt * L.bt;  // whole blocks
    t.chunk_tokens = ct;
    t.n_chunks = (range + ct - 1) / ct;
    t.part0 = n_parts;
    n_parts += t.n_chunks;
  }
  struct Item { int tile, chunk; };
  std::vector<Item> items;
  for (int ti = 0; ti < static_cast<int>(tiles.size()); ++ti)
    for (int c = 0; c < tiles[ti].n_chunks; ++c) items.push_back({ti, c});

  // Partials: per part, rows x (m, l, acc[Dc]).
  const int max_rows = q_per_tile * L.G;
  const size_t part_floats = static_cast<size_t>(max_rows) * (2 + L.Dc);
  std::vector<float> parts(part_floats * n_parts);
  auto run = [&](int idx) {
    const Item it = items[idx];
    const Tile& t = tiles[it.tile];
    const int rows = (t.i1 - t.i0) * L.G;
    const detail::KeyScorer& k = *kernels.k[t.kv_head];
    const int c_lo = t.lo + it.chunk * t.chunk_tokens;
    const int c_hi = std::min(t.hi, c_lo + t.chunk_tokens - 1);
    const int f0 = L.frames ? L.frames->frame(c_lo) : 0, f1 = L.frames ? L.frames->frame(c_hi) : 0;
    std::vector<float> states(k.state_floats() * rows * (f1 - f0 + 1));
    for (int f = f0; f <= f1; ++f)
      for (int r = 0; r < rows; ++r) {
        const int row = (t.i0 + r / L.G) * p.n_heads + t.kv_head * L.G + r % L.G;
        k.prepare(qstate.data() + frame_floats * f + qsf * row,
                  states.data() + k.state_floats() * (static_cast<size_t>(f - f0) * rows + r));
      }
    float* base = parts.data() + part_floats * (t.part0 + it.chunk);
    run_item(L, t, c_lo, c_hi, q_pos0, p, k, *kernels.v[t.kv_head], states.data(), base, base + max_rows,
             base + 2 * max_rows);
  };
  if (pool && items.size() > 1)
    pool->parallel_for(static_cast<int>(items.size()), run);
  else
    for (int i = 0; i < static_cast<int>(items.size()); ++i) run(i);

  // Merge the chunks of each tile (and its sink positions) and rotate back.
  auto merge = [&](int ti) {
    const Tile& t = tiles[ti];
    const int rows = (t.i1 - t.i0) * L.G;
    const Codec& kc = cache.k_codec(layer, t.kv_head);
    const Codec& vc = cache.v_codec(layer, t.kv_head);
    std::vector<float> acc(L.Dc), sink_s(sinks);
    for (int r = 0; r < rows; ++r) {
      const int row = (t.i0 + r / L.G) * p.n_heads + t.kv_head * L.G + r % L.G;
      const int pos = q_pos0 + t.i0 + r / L.G;
      const int s_lo = detail::first_key(pos, p.window), s_hi = std::min(pos, sinks - 1);
      float M = kNegInf;
      for (int c = 0; c < t.n_chunks; ++c) M = std::max(M, parts[part_floats * (t.part0 + c) + r]);
      for (int s = s_lo; s <= s_hi; ++s) {
        const size_t f = L.frames ? L.frames->frame(s) : 0;
        sink_s[s] = detail::cap_score(kc.dot_code(qstate.data() + frame_floats * f + qsf * row,
                                                  cache.k_sink(layer, seq, t.kv_head, s)),
                                      p.softcap);
        M = std::max(M, sink_s[s]);
      }
      float lsum = 0.f;
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int s = s_lo; s <= s_hi; ++s) {
        const float f = std::exp(sink_s[s] - M);
        lsum += f;
        const float* y = cache.v_sink(layer, seq, t.kv_head, s);
        for (int j = 0; j < L.Dc; ++j) acc[j] += f * y[j];
      }
      for (int c = 0; c < t.n_chunks; ++c) {
        const float* base = parts.data() + part_floats * (t.part0 + c);
        if (base[r] == kNegInf) continue;  // chunk saw no key for this row
        const float f = std::exp(base[r] - M);
        lsum += f * base[max_rows + r];
        const float* a = base + 2 * max_rows + static_cast<size_t>(r) * L.Dc;
        for (int j = 0; j < L.Dc; ++j) acc[j] += f * a[j];
      }
      const float inv = 1.f / lsum;  // lsum > 0: every query sees at least its own key
      for (float& a : acc) a *= inv;
      vc.finish(acc.data(), out + static_cast<size_t>(row) * L.D);
    }
  };
  if (pool && tiles.size() > 1)
    pool->parallel_for(static_cast<int>(tiles.size()), merge);
  else
    for (int i = 0; i < static_cast<int>(tiles.size()); ++i) merge(i);
}

}  // namespace tq
