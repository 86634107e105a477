#pragma once
// CUDA backend: a paged compressed KV cache in device memory with the same bytes as the
// CPU cache (kv_cache.h, docs/FORMATS.md), fused quantize-on-write and fused split-K
// decode attention over it. Plain C++: no CUDA header is needed to use it; streams and
// device pointers travel as void*. Every function throws tq::Error with a message that
// names the problem (bad argument, unsupported codec, a failed CUDA call).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/kv_cache.h"

namespace tq::cuda {

// True when the CUDA runtime sees at least one device (false, never a throw, without one).
bool device_available();
std::string device_name();  // "" without a device

// Whether the CUDA kernels implement this codec (prod/QJL rows are not implemented yet;
// calibrated preset names are, with their codecs from KvCacheConfig::calibrated), and the
// head dimensions they are compiled for (64, 128, 256).
bool codec_supported(std::string_view codec_name);
bool head_dim_supported(int head_dim);

enum class DType : uint8_t { f32 = 0, f16 = 1, bf16 = 2 };

class DeviceKvCache;

// Which quantize-on-write kernel writes a side. auto_: the warp-per-vector kernel where it
// applies (every codec but the group ones, every rotation but the dense one, no sinks);
// else, for a dense rotation with mse codes at head size 64 or 128 (no affine map, sinks or
// RoPE frames), the tensor-core kernel on writes large enough to fill the GPU; else the
// tiled one. tiled and warp write records byte-identical to Codec::encode; tensor differs
// only at near-ties (docs/CUDA.md, "Near-tie contract"). An explicit kernel that cannot
// write a side's codec is a tq::Error naming both, never a switch to the other kernel.
enum class QuantizeKernel : uint8_t { auto_ = 0, tiled = 1, warp = 2, tensor = 3 };
// Which split kernel decode attention runs. auto_: a tensor-core kernel where one applies
// (calibrated records on both sides, sinks included; or keys and values both uniform 2-4
// bit mse codes with one codebook and no sinks), else the CUDA-core one.
// TQ_CUDA_DECODE=simt|mma replaces auto_ for experiments (an explicit kernel is kept) and
// says so once on stderr. An explicit kernel that cannot run the
// layer's codecs is a tq::Error naming both.
enum class DecodeKernel : uint8_t { auto_ = 0, simt = 1, mma = 2 };
// How a decode step merges its context splits. split_reduce: a split kernel and a merge
// kernel, any split count; the tensor-core split kernels read the queries themselves
// where the keys have no rotation and the cache no sinks (two launches), else a third
// launch before them rotates the queries (prepared always does: the three launches the
// two are measured and tested against). single: one launch; the splits
// of a (sequence, KV head) are one thread-block cluster (Hopper and newer) and merge
// through distributed shared memory, so at most 16 splits. It takes the tensor-core split
// kernels at head_dim <= 128 without sinks or keys in RoPE frames; an explicit single launch holds the library's
// split count to one cluster, and one that cannot run a call (or a forced num_splits over
// the cluster size) is a tq::Error naming why. auto_ is split_reduce: on the H200 the
// single launch measured slower (BENCHMARKS.md, "one launch per decode step").
// TQ_CUDA_LAUNCH=single (split_reduce, prepared) replaces auto_ for experiments and says
// so once on stderr.
enum class DecodeLaunch : uint8_t { auto_ = 0, split_reduce = 1, single = 2, prepared = 3 };
const char* kernel_name(QuantizeKernel k);  // "auto", "tiled", "warp", "tensor"
const char* kernel_name(DecodeKernel k);    // "auto", "simt", "mma"
const char* launch_name(DecodeLaunch l);    // "auto", "split_reduce", "single", "prepared"

// Whether an explicit kernel can run a layer's side (0 keys, 1 values) or layer; auto_
// always can. Empty when it can, else why not (the text the tq::Error carries).
std::string quantize_kernel_unsupported(const DeviceKvCache& cache, int layer, int side, QuantizeKernel k);
std::string decode_kernel_unsupported(const DeviceKvCache& cache, int layer, DecodeKernel k);

// Quantize-on-write: n_tokens new tokens of one layer, every KV head, keys and values in
// one launch. keys and values are device arrays [n_tokens][n_kv_heads][head_dim] with a row
// stride of token_stride elements (token_stride = 0 means n_kv_heads * head_dim). slots[i] is the
// cache slot of token i: physical_block * block_tokens + position_in_block; a negative
// slot skips the token (padding). Range (docs/FORMATS.md, "Range"): norms and scales beyond
// fp16's range are stored saturated, as on the CPU; a vector holding NaN or Inf is refused
// (its slot is not written, the other tokens are) and, with `check`, the call waits for
// the write and throws the CPU cache's tq::Error naming layer, KV head, token of the write,
// K/V and coordinate; saturated vectors are added to tq::range_events().
struct QuantizeParams {
  int layer = 0;
  const void* keys = nullptr;
  const void* values = nullptr;
  DType dtype = DType::f32;
  int n_tokens = 0;
  int64_t token_stride = 0;
  const int32_t* slots = nullptr;  // device [n_tokens]
  void* stream = nullptr;          // cudaStream_t; nullptr = default stream
  // true: synchronize the stream after the launch and report (above). false: stay
  // asynchronous (CUDA graph capture, pipelines); the kernels still refuse and count,
  // and DeviceKvCache::check_writes() reports later.
  bool check = true;
  // Attention sinks (KvCacheConfig::sink_tokens > 0), else unused and may stay null:
  // positions[i] is token i's position in its sequence and seq_ids[i] that sequence's id
  // in [0, num_blocks()) (device [n_tokens] each). Tokens at positions < sink_tokens also
  // store their exact code-space vector (Codec::to_code) in the cache's sink store, which
  // attention reads instead of their records. A cache with sinks throws tq::Error naming
  // the missing array when either is null.
  // RoPE frames (KvCachePlan::key_frames, a calibrated preset's keys): each key is turned
  // back by the rotation at its frame's start (positions[i] / rope_range) before it is
  // encoded, as the CPU cache does; positions is then required (tq::Error naming it) even
  // without sinks. Positions are clamped to [0, num_blocks() * block_tokens).
  const int32_t* positions = nullptr;
  const int32_t* seq_ids = nullptr;
  QuantizeKernel kernel = QuantizeKernel::auto_;  // both sides
};
void quantize_on_write(DeviceKvCache& cache, const QuantizeParams& p);

// Decode attention: one query token per sequence. q is a device array
// [batch][n_q_heads][head_dim]; n_q_heads must be a multiple of n_kv_heads with
// n_q_heads / n_kv_heads in {1, 2, 4, 8} (grouped-query attention). block_tables is a
// device array [batch][max_blocks_per_seq] of physical block ids, seq_lens a device array
// [batch] of token counts (0 gives a zero output). out is a device float array
// [batch][n_q_heads][head_dim]. num_splits splits each sequence's context over that many
// CTAs (flash-decoding); 0 picks one from (batch, n_kv_heads, max_seq_len, window) only,
// so a decode step with a fixed max_seq_len can be captured in a CUDA graph.
// The split kernel: DecodeParams::kernel (DecodeKernel, above).
// Sliding window (DecodeParams::window > 0), the CPU's AttentionParams::window: row b's
// query sits at position p = seq_lens[b] - 1 and sees the keys at positions
// (p - window, p], its last `window` tokens; sink positions outside that range are not
// attended either. Each row's window follows its own length, so rows of one sequence at
// increasing lengths (prefill) get a causal sliding window. The splits share the tiles
// from the window's start only (no records before it are read), so a window never
// needs more workspace than none.

struct DecodeParams {
  int layer = 0;
  const void* queries = nullptr;
  DType queries_dtype = DType::f32;
  // Elements from one row's queries to the next; 0 means n_q_heads * head_dim (packed).
  // A fused QKV product's output is read in place with its row width here.
  int64_t query_stride = 0;
  int batch = 0;
  int n_q_heads = 0;
  const int32_t* block_tables = nullptr;
  int max_blocks_per_seq = 0;
  const int32_t* seq_lens = nullptr;
  // Upper bound of seq_lens: sizes the split count and, for keys in RoPE frames, the
  // workspace's query rows (one per frame up to position max_seq_len - 1; a longer row is
  // scored with the last of them, wrongly).
  int max_seq_len = 0;
  float scale = 0.f;         // softmax scale; 0 means 1/sqrt(head_dim)
  int num_splits = 0;
  // [batch][n_q_heads][head_dim] of out_dtype: the kernel that merges the splits writes
  // f16/bf16 itself, so a caller working in half precision needs no cast kernel.
  void* out = nullptr;
  DType out_dtype = DType::f32;
  void* workspace = nullptr;  // device memory of decode_workspace_bytes(...) bytes
  size_t workspace_bytes = 0;
  void* stream = nullptr;
  // Attention sinks: device [batch] sequence ids (as written by quantize_on_write) so the
  // first sink_tokens positions are read from the sink store; required (tq::Error naming
  // it) when the cache has sinks, unused otherwise. An id outside [0, num_blocks()) reads
  // the records instead.
  const int32_t* seq_ids = nullptr;
  DecodeKernel kernel = DecodeKernel::auto_;
  int window = 0;  // 0: none; else the last `window` tokens of each row (above); < 0 is a tq::Error
  DecodeLaunch launch = DecodeLaunch::auto_;
};
// Empty when the call p can run as one launch (DecodeLaunch::single), else why not.
std::string decode_single_unsupported(const DeviceKvCache& cache, const DecodeParams& p);
int decode_num_splits(const DeviceKvCache& cache, const DecodeParams& p);
size_t decode_workspace_bytes(const DeviceKvCache& cache, const DecodeParams& p);
void decode_attention(const DeviceKvCache& cache, const DecodeParams& p);

// The paged cache of kv_cache.h in device memory: per layer a K pool and a V pool of
// num_blocks blocks, block = [kv_head][token_in_block][record_bytes]. Codecs come from
// the cache's KvCachePlan (cache_plan.h), as the CPU cache's do, so pools written by the CPU cache
// can be uploaded and attended here, and pools written here can be downloaded and read by
// the CPU cache. With sink_tokens > 0 a sink store per layer and side holds the exact
// code-space rows of each sequence's first positions (sequence ids in [0, num_blocks)).
class DeviceKvCache {
 public:
  explicit DeviceKvCache(const KvCacheConfig& config);  // builds its plan; throws tq::Error
  // From a plan (e.g. the one a CPU cache holds): tq::Error when the CUDA kernels do not
  // take it (head size, codec, block_tokens). The copy it keeps records each layer's decode
  // route (CacheLayerPlan::cuda_decode).
  explicit DeviceKvCache(KvCachePlan plan);
  ~DeviceKvCache();
  DeviceKvCache(const DeviceKvCache&) = delete;
  DeviceKvCache& operator=(const DeviceKvCache&) = delete;

  const KvCacheConfig& config() const { return plan_.config(); }
  const KvCachePlan& plan() const { return plan_; }
  int num_blocks() const { return num_blocks_; }
  // kv: 0 = keys, 1 = values.
  const Codec& codec(int layer, int kv_head, int kv) const;
  size_t record_bytes(int layer, int kv) const;
  size_t block_bytes(int layer, int kv) const;  // n_kv_heads * block_tokens * record_bytes
  size_t pool_bytes(int layer, int kv) const { return block_bytes(layer, kv) * num_blocks_; }
  void* pool(int layer, int kv);  // device pointer
  const void* pool(int layer, int kv) const;

  // Waits for the device, then reports what unchecked writes (QuantizeParams::check =
  // false) saw: saturated vectors into tq::range_events(), and a tq::Error for the first
  // refused NaN/Inf input (its token index is within the write that had it).
  void check_writes();

  void upload_pool(int layer, int kv, const uint8_t* host, size_t bytes);
  // The sink store of a layer's side (sink_tokens > 0): device floats
  // [seq_id < num_blocks()][sink position][kv_head][head_dim], zero until written; upload
  // copies host floats of that shape (e.g. KvCache::k_sink rows of a CPU cache).
  size_t sink_floats(int layer, int kv) const;
  float* sink_store(int layer, int kv);
  void upload_sinks(int layer, int kv, const float* host, size_t floats);
  void download_pool(int layer, int kv, uint8_t* host, size_t bytes) const;

  struct Impl;  // device-side codec and rotation descriptors (src/cuda)
  const Impl& impl() const { return *impl_; }

 private:
  KvCachePlan plan_;
  int num_blocks_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tq::cuda
