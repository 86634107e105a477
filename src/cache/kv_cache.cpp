// The paged cache: per layer a K pool and a V pool of num_blocks blocks, a free list of
// physical block ids, and per sequence one block table shared by all layers (layers
// append one after another, so a block allocated for layer 0 is reused by the others).
// Block layout: [kv_head][token_in_block][record], see kv_cache.h and docs/FORMATS.md.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "../cpu/encode.h"
#include "../cpu/kernels.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/range.h"
#include "turboquant/rng.h"
#include "turboquant/thread_pool.h"

namespace tq {

struct KvCache::Layer {
  std::vector<std::unique_ptr<detail::RecordEncoder>> k_enc, v_enc;  // fast Codec::encode, per KV head
  size_t k_rec = 0, v_rec = 0;      // the plan's record and block bytes, at hand for the hot paths
  size_t k_block = 0, v_block = 0;
  std::vector<uint8_t> k_pool, v_pool;  // num_blocks * block bytes + kPoolSlackBytes
};

struct KvCache::Sequence {
  bool live = false;
  std::vector<int32_t> blocks;  // logical -> physical
  std::vector<int> length;      // per layer
  std::vector<std::vector<float>> sink_k, sink_v;  // per layer: [sink token][kv_head][code_dim]
};

namespace {

std::string layer_str(int layer) { return "layer " + std::to_string(layer); }

}  // namespace

// The attention kernels of every layer, per AttendPath, built on first use of that path.
struct KvCache::KernelStore {
  std::once_flag built[4];
  std::vector<detail::LayerKernels> layers[4];
};

KvCache::KvCache(const KvCacheConfig& cfg) : KvCache(KvCachePlan(cfg)) {}

KvCache::KvCache(KvCachePlan plan) : plan_(std::move(plan)), kernels_(std::make_unique<KernelStore>()) {
  const KvCacheConfig& cfg = plan_.config();
  num_blocks_ = plan_.num_blocks();

  layers_.resize(cfg.n_layers);
  for (int l = 0; l < cfg.n_layers; ++l) {
    Layer& L = layers_[l];
    const CacheLayerPlan& P = plan_.layer(l);
    for (int h = 0; h < cfg.n_kv_heads; ++h) {
      L.k_enc.push_back(detail::make_record_encoder(P.keys.codecs[h]));
      L.v_enc.push_back(detail::make_record_encoder(P.values.codecs[h]));
    }
    L.k_rec = P.keys.record_bytes;
    L.v_rec = P.values.record_bytes;
    L.k_block = P.keys.block_bytes;
    L.v_block = P.values.block_bytes;
    L.k_pool.assign(L.k_block * num_blocks_ + kPoolSlackBytes, 0);
    L.v_pool.assign(L.v_block * num_blocks_ + kPoolSlackBytes, 0);
  }
  free_.resize(num_blocks_);
  for (int i = 0; i < num_blocks_; ++i) free_[i] = num_blocks_ - 1 - i;  // pop_back gives 0 first
}

KvCache::KvCache(KvCache&&) noexcept = default;
KvCache& KvCache::operator=(KvCache&&) noexcept = default;
KvCache::~KvCache() = default;

const detail::LayerKernels& KvCache::attend_kernels(int layer, AttendPath path) const {
  layer_at(layer);
  const int p = static_cast<int>(path);
  std::call_once(kernels_->built[p], [&] {
    std::vector<detail::LayerKernels> layers;
    for (int l = 0; l < config().n_layers; ++l)
      layers.push_back(detail::make_layer_kernels(codecs(l, false), codecs(l, true), path));
    kernels_->layers[p] = std::move(layers);
  });
  return kernels_->layers[p][layer];
}

const std::vector<Codec>& KvCache::codecs(int layer, bool value) const { return plan_.side(layer, value).codecs; }

const KvCache::Layer& KvCache::layer_at(int layer) const {
  if (layer < 0 || layer >= config().n_layers)
    throw Error("KvCache: " + layer_str(layer) + " out of range [0, " + std::to_string(config().n_layers) + ")");
  return layers_[layer];
}

const KvCache::Sequence& KvCache::seq_at(int seq) const {
  if (seq < 0 || seq >= static_cast<int>(seqs_.size()) || !seqs_[seq].live)
    throw Error("KvCache: no live sequence " + std::to_string(seq));
  return seqs_[seq];
}
KvCache::Sequence& KvCache::seq_at(int seq) {
  return const_cast<Sequence&>(static_cast<const KvCache*>(this)->seq_at(seq));
}

int KvCache::add_sequence() {
  int id = 0;
  while (id < static_cast<int>(seqs_.size()) && seqs_[id].live) ++id;
  add_sequence_with_id(id);
  return id;
}

void KvCache::add_sequence_with_id(int seq) {
  // Ids index a table: a loaded file naming id 2^24 once cost 1.7 GB (found by the fuzzer).
  if (seq < 0 || seq >= kMaxSequences)
    throw Error("KvCache: sequence id " + std::to_string(seq) + " out of range [0, " + std::to_string(kMaxSequences) + ")");
  if (seq >= static_cast<int>(seqs_.size())) seqs_.resize(seq + 1);
  if (seqs_[seq].live) throw Error("KvCache: sequence " + std::to_string(seq) + " already exists");
  seqs_[seq].live = true;
  seqs_[seq].blocks.clear();
  seqs_[seq].length.assign(config().n_layers, 0);
  seqs_[seq].sink_k.assign(config().n_layers, {});
  seqs_[seq].sink_v.assign(config().n_layers, {});
}

void KvCache::remove_sequence(int seq) {
  Sequence& s = seq_at(seq);
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) free_.push_back(*it);
  s = Sequence{};
}

bool KvCache::has_sequence(int seq) const {
  return seq >= 0 && seq < static_cast<int>(seqs_.size()) && seqs_[seq].live;
}

std::vector<int> KvCache::sequences() const {
  std::vector<int> ids;
  for (int i = 0; i < static_cast<int>(seqs_.size()); ++i)
    if (seqs_[i].live) ids.push_back(i);
  return ids;
}

int KvCache::length(int layer, int seq) const {
  layer_at(layer);
  return seq_at(seq).length[layer];
}

const Codec& KvCache::k_codec(int layer, int kv_head) const { return plan_.codec(layer, kv_head, false); }
const Codec& KvCache::v_codec(int layer, int kv_head) const { return plan_.codec(layer, kv_head, true); }

size_t KvCache::bytes_per_token() const { return plan_.bytes_per_token(); }

size_t KvCache::sink_bytes() const { return plan_.sink_bytes(); }

const float* KvCache::sink(int layer, int seq, int kv_head, int pos, bool value) const {
  layer_at(layer);
  const Sequence& s = seq_at(seq);
  if (kv_head < 0 || kv_head >= config().n_kv_heads || pos < 0 || pos >= std::min(config().sink_tokens, s.length[layer]))
    throw Error(std::string("KvCache: no ") + (value ? "V" : "K") + " sink for head " + std::to_string(kv_head) +
                " at position " + std::to_string(pos));
  const int dc = codecs(layer, value)[0].code_dim();
  return (value ? s.sink_v : s.sink_k)[layer].data() + (static_cast<size_t>(pos) * config().n_kv_heads + kv_head) * dc;
}
const float* KvCache::k_sink(int layer, int seq, int kv_head, int pos) const { return sink(layer, seq, kv_head, pos, false); }
const float* KvCache::v_sink(int layer, int seq, int kv_head, int pos) const { return sink(layer, seq, kv_head, pos, true); }

size_t KvCache::bytes_used() const { return plan_.bytes_per_block() * static_cast<size_t>(num_blocks_ - free_blocks()); }

size_t KvCache::k_record_bytes(int layer) const { return layer_at(layer).k_rec; }
size_t KvCache::v_record_bytes(int layer) const { return layer_at(layer).v_rec; }
size_t KvCache::k_block_bytes(int layer) const { return layer_at(layer).k_block; }
size_t KvCache::v_block_bytes(int layer) const { return layer_at(layer).v_block; }
size_t KvCache::pool_bytes(int layer, bool values) const {
  const Layer& L = layer_at(layer);
  return (values ? L.v_block : L.k_block) * static_cast<size_t>(num_blocks_);
}
const uint8_t* KvCache::k_pool(int layer) const { return layer_at(layer).k_pool.data(); }
const uint8_t* KvCache::v_pool(int layer) const { return layer_at(layer).v_pool.data(); }
uint8_t* KvCache::mutable_k_pool(int layer) { return const_cast<uint8_t*>(k_pool(layer)); }
uint8_t* KvCache::mutable_v_pool(int layer) { return const_cast<uint8_t*>(v_pool(layer)); }
const std::vector<int32_t>& KvCache::block_table(int seq) const { return seq_at(seq).blocks; }

const uint8_t* KvCache::record(int layer, int seq, int kv_head, int pos, bool value) const {
  const Layer& L = layer_at(layer);
  const Sequence& s = seq_at(seq);
  if (kv_head < 0 || kv_head >= config().n_kv_heads || pos < 0 || pos >= s.length[layer])
    throw Error(std::string("KvCache: no ") + (value ? "V" : "K") + " record for head " + std::to_string(kv_head) +
                " at position " + std::to_string(pos));
  const int bt = config().block_tokens;
  const size_t rec = value ? L.v_rec : L.k_rec, block = value ? L.v_block : L.k_block;
  return (value ? L.v_pool : L.k_pool).data() + block * s.blocks[pos / bt] + rec * (static_cast<size_t>(kv_head) * bt + pos % bt);
}
const uint8_t* KvCache::k_record(int layer, int seq, int kv_head, int pos) const {
  return record(layer, seq, kv_head, pos, false);
}
const uint8_t* KvCache::v_record(int layer, int seq, int kv_head, int pos) const {
  return record(layer, seq, kv_head, pos, true);
}

void KvCache::reserve_blocks(Sequence& s, int tokens_needed) {
  const size_t need = (static_cast<size_t>(tokens_needed) + config().block_tokens - 1) / config().block_tokens;
  if (need <= s.blocks.size()) return;
  const size_t extra = need - s.blocks.size();
  if (extra > free_.size())
    throw Error("KvCache: pool full: " + std::to_string(tokens_needed) + " tokens need " + std::to_string(extra) +
                " more blocks of " + std::to_string(config().block_tokens) + " tokens but " + std::to_string(free_.size()) +
                " of " + std::to_string(num_blocks_) + " are free (max_tokens = " + std::to_string(config().max_tokens) + ")");
  for (size_t i = 0; i < extra; ++i) {
    s.blocks.push_back(free_.back());
    free_.pop_back();
  }
}

namespace {

// A branch-free scan (the compiler vectorizes it): all exponent bits set means Inf or NaN.
bool all_finite(const float* x, size_t count) {
  uint32_t bad = 0;
  for (size_t i = 0; i < count; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, sizeof u);
    bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

// Refuses keys and values holding NaN or Inf before anything is written: the error names
// the first bad value in position order (K before V at one position), the range counters
// count every vector holding one.
void check_finite(const float* k, const float* v, int n_tokens, int n_kv_heads, int head_dim, int layer, int pos0) {
  const size_t count = static_cast<size_t>(n_tokens) * n_kv_heads * head_dim;
  if (all_finite(k, count) && all_finite(v, count)) return;
  uint64_t bad_vectors = 0;
  std::string first;
  for (int t = 0; t < n_tokens; ++t)
    for (int side = 0; side < 2; ++side)
      for (int h = 0; h < n_kv_heads; ++h) {
        const float* x = (side ? v : k) + (static_cast<size_t>(t) * n_kv_heads + h) * head_dim;
        const float* bad = std::find_if(x, x + head_dim, [](float e) { return !std::isfinite(e); });
        if (bad == x + head_dim) continue;
        ++bad_vectors;
        if (first.empty())
          first = nonfinite_kv_message("KvCache::append", layer, h, "position " + std::to_string(pos0 + t), side == 1,
                                       static_cast<int>(bad - x), *bad);
      }
  detail::count_nonfinite(bad_vectors);
  throw Error(first + "; nothing was written");
}

}  // namespace

void KvCache::append(int layer, int seq, int n_tokens, const float* k, const float* v, ThreadPool* pool) {
  const Layer& L = layer_at(layer);
  Sequence& s = seq_at(seq);
  if (n_tokens < 0) throw Error("KvCache::append: n_tokens must be >= 0, got " + std::to_string(n_tokens));
  if (n_tokens == 0) return;
  if (!k || !v) throw Error("KvCache::append: null K or V pointer");
  const int H = config().n_kv_heads, D = config().head_dim;
  const int pos0 = s.length[layer];
  check_finite(k, v, n_tokens, H, D, layer, pos0);
  reserve_blocks(s, pos0 + n_tokens);
  std::vector<float> turned;  // keys turned into their RoPE frames, when the codec has them
  if (const RopeFrames* frames = plan_.key_frames(layer)) {
    turned.assign(k, k + static_cast<size_t>(n_tokens) * H * D);
    for (int t = 0; t < n_tokens;) {
      const int f = frames->frame(pos0 + t);
      const int t1 = std::min(n_tokens, frames->frame_start(f + 1) - pos0);
      const RopeFrames::Turn& turn = plan_.key_turn(layer, f);
      for (; t < t1; ++t)
        for (int h = 0; h < H; ++h) turn.apply(turned.data() + (static_cast<size_t>(t) * H + h) * D);
    }
    k = turned.data();
  }

  // One task per (run, head, side): a run is the new tokens inside one block, whose
  // records of one head are contiguous, so an encoder handles them as one batch.
  const int bt = config().block_tokens;
  std::vector<int> run_start;  // token index of each run's first token, then n_tokens
  for (int t = 0; t < n_tokens; t += bt - (pos0 + t) % bt) run_start.push_back(t);
  run_start.push_back(n_tokens);
  const int runs = static_cast<int>(run_start.size()) - 1;
  auto encode_task = [&](int task) {
    const int run = task / (2 * H), h = (task / 2) % H;
    const bool value = task % 2;
    const int t0 = run_start[run], pos = pos0 + t0;
    const size_t blk = static_cast<size_t>(s.blocks[pos / bt]);
    const size_t slot = static_cast<size_t>(h) * bt + pos % bt;
    const size_t rec = value ? L.v_rec : L.k_rec;
    uint8_t* out = const_cast<uint8_t*>((value ? L.v_pool : L.k_pool).data()) + (value ? L.v_block : L.k_block) * blk + rec * slot;
    const float* x = (value ? v : k) + (static_cast<size_t>(t0) * H + h) * D;
    (value ? L.v_enc : L.k_enc)[h]->encode(x, static_cast<size_t>(H) * D, run_start[run + 1] - t0, out, rec);
  };
  const int tasks = runs * H * 2;
  if (pool && pool->size() > 1 && tasks > 1) {
    pool->parallel_for(tasks, encode_task);
  } else {
    for (int i = 0; i < tasks; ++i) encode_task(i);
  }
  // Sink positions: also their exact code-space vectors.
  const int sinks = std::min(config().sink_tokens, pos0 + n_tokens) - pos0;
  for (int side = 0; side < 2 && sinks > 0; ++side) {
    const std::vector<Codec>& side_codecs = codecs(layer, side == 1);
    float* out = grow_sinks(s, layer, side == 1, pos0 + sinks);
    const int dc = side_codecs[0].code_dim();
    for (int t = 0; t < sinks; ++t)
      for (int h = 0; h < H; ++h)
        side_codecs[h].to_code((side ? v : k) + (static_cast<size_t>(t) * H + h) * D,
                          out + (static_cast<size_t>(pos0 + t) * H + h) * dc);
  }
  s.length[layer] = pos0 + n_tokens;
}

// The store grows with the positions written (not to sink_tokens at once), so a loaded
// file's sink store costs no more memory than the bytes it holds.
float* KvCache::grow_sinks(Sequence& s, int layer, bool value, int positions) {
  const size_t dc = static_cast<size_t>(codecs(layer, value)[0].code_dim());
  std::vector<float>& store = (value ? s.sink_v : s.sink_k)[layer];
  store.resize(std::max(store.size(), static_cast<size_t>(positions) * config().n_kv_heads * dc));
  return store.data();
}

void KvCache::append_records(int layer, int seq, int n_tokens, const uint8_t* k_records, const uint8_t* v_records,
                             const float* k_sinks, const float* v_sinks) {
  Layer& L = layers_[(layer_at(layer), layer)];
  Sequence& s = seq_at(seq);
  if (n_tokens < 0) throw Error("KvCache::append_records: n_tokens must be >= 0, got " + std::to_string(n_tokens));
  if (n_tokens == 0) return;
  if (!k_records || !v_records) throw Error("KvCache::append_records: null record pointer");
  const int H = config().n_kv_heads, bt = config().block_tokens;
  const int pos0 = s.length[layer];
  const int sinks = std::max(0, std::min(config().sink_tokens, pos0 + n_tokens) - pos0);
  if (sinks > 0) {
    if (!k_sinks || !v_sinks)
      throw Error("KvCache::append_records: positions below sink_tokens (" + std::to_string(config().sink_tokens) +
                  ") need their exact vectors: pass them, or fill those positions with append()");
    for (int side = 0; side < 2; ++side) {
      const float* x = side ? v_sinks : k_sinks;
      const size_t count = static_cast<size_t>(sinks) * H * codecs(layer, side == 1)[0].code_dim();
      if (!all_finite(x, count))
        throw Error("KvCache::append_records: " + layer_str(layer) + ": a " + (side ? "V" : "K") +
                    " sink vector holds NaN or Inf; nothing was written");
    }
  }
  reserve_blocks(s, pos0 + n_tokens);
  for (int side = 0; side < 2 && sinks > 0; ++side) {
    const size_t dc = static_cast<size_t>(codecs(layer, side == 1)[0].code_dim());
    float* out = grow_sinks(s, layer, side == 1, pos0 + sinks);
    std::copy_n(side ? v_sinks : k_sinks, static_cast<size_t>(sinks) * H * dc, out + static_cast<size_t>(pos0) * H * dc);
  }
  for (int t = 0; t < n_tokens; ++t) {
    const int pos = pos0 + t;
    const size_t blk = static_cast<size_t>(s.blocks[pos / bt]);
    for (int h = 0; h < H; ++h) {
      const size_t slot = static_cast<size_t>(h) * bt + pos % bt;
      const size_t src = static_cast<size_t>(t) * H + h;
      std::copy_n(k_records + src * L.k_rec, L.k_rec, L.k_pool.data() + L.k_block * blk + L.k_rec * slot);
      std::copy_n(v_records + src * L.v_rec, L.v_rec, L.v_pool.data() + L.v_block * blk + L.v_rec * slot);
    }
  }
  s.length[layer] = pos0 + n_tokens;
}

}  // namespace tq
