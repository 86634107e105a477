#pragma once
// The cache plan, planner/runner style (as FlashInfer separates planning from running):
// everything a paged cache's configuration decides, resolved and validated once per
// cache. Per layer and side (K or V): the codec name, per KV head its seed and Codec, the
// record layout, which CPU fast paths apply; per layer the CUDA decode kernel. KvCache,
// cuda::DeviceKvCache and the C API build from a plan, so the CPU and the CUDA cache hold
// the same codecs and bytes by construction; attend() and decode_attention() read what the
// plan resolved instead of deciding again on every call.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/rope_frame.h"

namespace tq {

struct CalibratedCodecs;

struct KvCacheConfig {
  int n_layers = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  std::string k_codec = "f16";
  std::string v_codec = "f16";
  // Per-layer overrides {layer: {k codec, v codec}}, e.g. first/last layers at q8_0.
  std::map<int, std::pair<std::string, std::string>> layer_codecs;
  int block_tokens = 32;
  int max_tokens = 4096;  // pool capacity over all sequences, rounded up to whole blocks
  uint64_t seed = 0;
  // The calibrated preset's codecs (kv_profile.h): a K or V codec named like
  // calibrated->preset takes its per-layer, per-head codec from here.
  std::shared_ptr<const CalibratedCodecs> calibrated;
  // Attention sinks: the first sink_tokens positions of every sequence are also kept as
  // exact code-space vectors (f32, Codec::to_code; any finite value), and attention reads those instead of
  // their records. They draw the most attention and are the least typical vectors.
  int sink_tokens = 0;
};

// Which CPU kernels attend() uses: the widest at or below the named level that the build
// (compile-time -m flags; TQ_NATIVE builds for the build machine) and the codec have.
// `best` = avx512 (16 lanes) when compiled, else avx2 (8 lanes, FMA, F16C); `portable` is
// the same blocked algorithm in plain C++ with table-look-up scoring, what a CPU without
// AVX2 runs. Every path is tested against attend_reference.
enum class AttendPath { best, avx512, avx2, portable };

// The seed rule of every cache: derive_seed(seed, layer * 65536 + kv_head * 2 + (0 for K,
// 1 for V)), so each layer, KV head and side has its own rotation.
uint64_t cache_codec_seed(uint64_t seed, int layer, int kv_head, bool value);

// One layer's K or V.
struct CacheSidePlan {
  std::string codec;             // the name configured for this layer and side
  bool calibrated = false;       // codecs from KvCacheConfig::calibrated (seeds unused)
  std::vector<uint64_t> seeds;   // per KV head (cache_codec_seed)
  std::vector<Codec> codecs;     // per KV head
  size_t record_bytes = 0;       // one token of one head
  size_t block_bytes = 0;        // n_kv_heads * block_tokens * record_bytes
  bool cpu_simd = false;         // attend() runs AVX2/AVX-512 kernels for it in this build
};

// The CUDA decode kernel a layer's codecs take under DecodeKernel::auto_ (cuda.h):
// resolved by cuda::DeviceKvCache when it builds from the plan (the rule reads the
// device record layout, src/cuda); the SIMT kernel when neither tensor-core kernel applies.
struct CudaDecodeRoute {
  int mma_bits = 0;          // code width of the uniform mse tensor-core kernel; 0: not it
  bool mma_grouped = false;  // the tile tensor-core kernel, calibrated records
  bool mma_plain = false;    // the tile tensor-core kernel, f16 / q8_0 / q4_0 records
  bool tensor_core() const { return mma_bits > 0 || mma_grouped || mma_plain; }
  bool tile() const { return mma_grouped || mma_plain; }
};

struct CacheLayerPlan {
  CacheSidePlan keys, values;
  CudaDecodeRoute cuda_decode;
  const CacheSidePlan& side(bool value) const { return value ? values : keys; }
};

class KvCachePlan {
 public:
  // Validates cfg and builds every codec; tq::Error prefixed by `who` (the cache being
  // built) naming what was wrong: shapes, an unknown codec (with its layer and side), a
  // calibrated preset without its codecs or with codecs of another shape.
  explicit KvCachePlan(const KvCacheConfig& cfg, std::string_view who = "KvCache");

  const KvCacheConfig& config() const { return cfg_; }
  int num_blocks() const { return num_blocks_; }
  const CacheLayerPlan& layer(int layer) const;  // tq::Error out of range
  const CacheSidePlan& side(int layer, bool value) const { return this->layer(layer).side(value); }
  const Codec& codec(int layer, int kv_head, bool value) const;  // tq::Error out of range
  size_t bytes_per_token() const;  // all layers, K + V
  size_t bytes_per_block() const;  // one block of every layer, K + V
  size_t sink_bytes() const;       // one sequence's f32 sink rows (sink_tokens), all layers, K + V
  // The RoPE frames a layer's keys are stored in (rope_frame.h): the calibrated preset's
  // when it has them on and this layer's keys are that preset, else nullptr.
  const RopeFrames* key_frames(int layer) const;
  // Tokens the pool holds: num_blocks() whole blocks (max_tokens rounded up).
  int64_t capacity() const { return static_cast<int64_t>(num_blocks_) * cfg_.block_tokens; }
  // RopeFrames::turn_back at the start of `frame` of a layer's keys, computed once for every
  // frame the capacity reaches (attention turns each query once per frame per step; the
  // CUDA cache uploads them). tq::Error for a layer without frames or a frame past it.
  const RopeFrames::Turn& key_turn(int layer, int frame) const;

  // For cuda::DeviceKvCache, which resolves the route from its device layout.
  void set_cuda_decode(int layer, CudaDecodeRoute route);

 private:
  KvCacheConfig cfg_;
  std::string who_;
  int num_blocks_ = 0;
  std::vector<CacheLayerPlan> layers_;
  std::vector<std::vector<RopeFrames::Turn>> key_turns_;  // [layer][frame]; empty without frames
};

}  // namespace tq
