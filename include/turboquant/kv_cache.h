#pragma once
// Compressed paged KV cache (API contract; layout in docs/FORMATS.md, "Paged cache").
//
// Layout: every layer owns two pools (K and V) of `num_blocks` blocks. A block holds
// `block_tokens` consecutive tokens of one sequence for all KV heads, as
//   block bytes = [kv_head][token_in_block][record_bytes of that layer's codec]
// so one head's tokens are contiguous runs of block_tokens records. A sequence has one
// block table (logical block -> physical block id) shared by all layers: physical
// block b is slot b of every layer's pool. Keys and values choose codecs
// independently, per layer if wanted. Codec seeds: derive_seed(seed, layer * 65536 +
// kv_head * 2 + (0 for K, 1 for V)), so each layer/head has its own rotation.
// The CUDA backend uses exactly the same bytes.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "turboquant/codec.h"

namespace tq {

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
};

class KvCache;  // defined in src/cache

}  // namespace tq
