#pragma once
// Compressed paged KV cache (API contract; layout in docs/FORMATS.md, "Paged cache").
//
// Layout: every layer owns two pools (K and V) of `num_blocks` blocks. A block holds
// `block_tokens` consecutive tokens of one sequence for all KV heads, as
//   block bytes = [kv_head][token_in_block][record_bytes of that layer's codec]
// so one head's tokens are contiguous runs of block_tokens records. A sequence has one
// block table (logical block -> physical block id) shared by all layers: physical
// block b is slot b of every layer's pool. Keys and values choose codecs
// independently, per layer if wanted. Codecs, seeds and record sizes come from the
// cache's KvCachePlan (cache_plan.h); the CUDA backend builds from the same plan and uses
// exactly the same bytes.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "turboquant/cache_plan.h"
#include "turboquant/codec.h"

namespace tq {

class ThreadPool;
namespace detail {
struct LayerKernels;  // one layer's CPU attention kernels (src/cpu/kernels.h)
}

// The paged cache. Not thread-safe for concurrent writers; readers (attend) may run
// concurrently with each other. Every error is a tq::Error and leaves the cache as it was.
class KvCache {
 public:
  explicit KvCache(const KvCacheConfig& cfg);  // builds its plan: tq::Error on unknown codec / bad dims
  explicit KvCache(KvCachePlan plan);
  KvCache(KvCache&&) noexcept;
  KvCache& operator=(KvCache&&) noexcept;
  ~KvCache();

  const KvCacheConfig& config() const { return plan_.config(); }
  const KvCachePlan& plan() const { return plan_; }
  int add_sequence();               // returns a sequence id (the smallest unused one)
  void remove_sequence(int seq);    // frees its blocks
  bool has_sequence(int seq) const;
  std::vector<int> sequences() const;  // ids of live sequences, ascending

  // Quantize on write. k, v: [n_tokens][n_kv_heads][head_dim] floats, appended at positions
  // length(layer, seq) ... + n_tokens - 1. tq::Error when the pool is full or on NaN/Inf
  // (naming layer, KV head, position, K/V and coordinate; checked before anything is
  // written). Norms and scales beyond fp16's range are stored saturated and counted
  // (range.h). `pool` spreads the encoding over threads.
  void append(int layer, int seq, int n_tokens, const float* k, const float* v,
              ThreadPool* pool = nullptr);
  int length(int layer, int seq) const;
  const Codec& k_codec(int layer, int kv_head) const;
  const Codec& v_codec(int layer, int kv_head) const;
  size_t bytes_per_token() const;   // all layers, K + V, exact
  size_t sink_bytes() const;        // the f32 sink store of one full sequence, all layers
  int sink_tokens() const { return plan_.config().sink_tokens; }
  // f32 code-space K / V of a sink position (pos < min(sink_tokens, length)): code_dim floats.
  const float* k_sink(int layer, int seq, int kv_head, int pos) const;
  const float* v_sink(int layer, int seq, int kv_head, int pos) const;
  size_t bytes_used() const;        // bytes of allocated blocks (all layers, K + V)

  // ---- Raw layout, for backends that copy or read the paged bytes (docs/FORMATS.md) ----
  int num_blocks() const { return num_blocks_; }
  int free_blocks() const { return static_cast<int>(free_.size()); }
  int block_tokens() const { return plan_.config().block_tokens; }
  size_t k_record_bytes(int layer) const;
  size_t v_record_bytes(int layer) const;
  size_t k_block_bytes(int layer) const;  // n_kv_heads * block_tokens * k_record_bytes
  size_t v_block_bytes(int layer) const;
  size_t pool_bytes(int layer, bool values) const;  // num_blocks * block bytes
  // Base of a layer's K or V pool: block b starts at base + b * block bytes. The pool is
  // followed by kPoolSlackBytes readable zero bytes so vector loads may run past a record.
  const uint8_t* k_pool(int layer) const;
  const uint8_t* v_pool(int layer) const;
  uint8_t* mutable_k_pool(int layer);
  uint8_t* mutable_v_pool(int layer);
  // Logical block -> physical block id, shared by all layers.
  const std::vector<int32_t>& block_table(int seq) const;
  // Record of one token of one head (token at absolute position pos < length(layer, seq)).
  const uint8_t* k_record(int layer, int seq, int kv_head, int pos) const;
  const uint8_t* v_record(int layer, int seq, int kv_head, int pos) const;

  // Raw write: already-encoded records, [n_tokens][n_kv_heads][record bytes] for K and V
  // of this layer, appended like append() (used by load and by other backends). Positions
  // below sink_tokens also need their exact code-space vectors: k_sinks and v_sinks hold
  // [the new positions below sink_tokens][n_kv_heads][code_dim] finite floats (unused,
  // and may be null, when no new position is a sink). Checked before anything is written.
  void append_records(int layer, int seq, int n_tokens, const uint8_t* k_records,
                      const uint8_t* v_records, const float* k_sinks = nullptr,
                      const float* v_sinks = nullptr);
  // Adds a sequence with a chosen id (tq::Error when that id is live). For loaders.
  void add_sequence_with_id(int seq);

  // The CPU attention kernels of a layer on `path`, built from the plan's codecs on the
  // first call for that path and kept for the cache's life (attend() reads them; safe to
  // call from concurrent readers).
  const detail::LayerKernels& attend_kernels(int layer, AttendPath path) const;

  static constexpr size_t kPoolSlackBytes = 64;
  static constexpr int kMaxSequences = 1 << 16;  // sequence ids are in [0, kMaxSequences)

 private:
  struct Layer;
  struct Sequence;
  struct KernelStore;
  const std::vector<Codec>& codecs(int layer, bool value) const;
  const Layer& layer_at(int layer) const;
  const Sequence& seq_at(int seq) const;
  Sequence& seq_at(int seq);
  const uint8_t* record(int layer, int seq, int kv_head, int pos, bool value) const;
  const float* sink(int layer, int seq, int kv_head, int pos, bool value) const;
  float* grow_sinks(Sequence& s, int layer, bool value, int positions);
  void reserve_blocks(Sequence& s, int tokens_needed);

  KvCachePlan plan_;
  int num_blocks_ = 0;
  std::vector<Layer> layers_;
  std::vector<Sequence> seqs_;  // by id; dead entries have live == false
  std::vector<int32_t> free_;   // stack of free physical blocks
  std::unique_ptr<KernelStore> kernels_;
};

}  // namespace tq
