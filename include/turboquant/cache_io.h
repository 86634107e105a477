#pragma once
// Saving and loading a KvCache, or some of its sequences (layout in docs/FORMATS.md,
// "Cache file"). The records are copied byte for byte, so a round trip is bit-exact.
// A file carries the whole cache configuration (shapes, codecs per layer, seed, block
// size) and an FNV-1a 64 checksum of everything after its header; a truncated,
// corrupted or mismatched file gives a tq::Error that names the problem. Saving never
// replaces an existing file unless `overwrite` is set (and then replaces it atomically).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "turboquant/kv_cache.h"

namespace tq {

// Limits a loader applies before allocating anything a file asks for.
struct CacheLoadLimits {
  size_t max_pool_bytes = size_t(1) << 38;  // K + V pools of the cache load_cache builds
  int max_layer_heads = 1 << 16;            // n_layers * n_kv_heads (each makes two codecs)
  int max_head_dim = 1024;
};

constexpr uint32_t kCacheFileVersion = 1;

void save_cache(const KvCache& cache, const std::string& path, bool overwrite = false);
void save_sequence(const KvCache& cache, int seq, const std::string& path, bool overwrite = false);
// A new cache with the file's configuration and sequences, under their saved ids.
KvCache load_cache(const std::string& path, const CacheLoadLimits& limits = {});
// Appends the file's sequences to `cache` as new sequences; returns their ids. The file's
// shapes, seed and per-layer codecs must equal the cache's (block size may differ).
std::vector<int> load_sequences(KvCache& cache, const std::string& path);

// The same in memory (the loader's fuzz target drives these).
std::vector<uint8_t> serialize_cache(const KvCache& cache, const std::vector<int>& seqs);
KvCache deserialize_cache(std::span<const uint8_t> bytes, const CacheLoadLimits& limits = {});
std::vector<int> deserialize_sequences(KvCache& cache, std::span<const uint8_t> bytes);

}  // namespace tq
