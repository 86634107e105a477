#pragma once
// Saving and loading a KvCache, or some of its sequences (layout in docs/FORMATS.md,
// "Cache file"). The records and the sink store are copied byte for byte, so a round trip
// is bit-exact. A file carries the whole cache configuration (shapes, codecs per layer,
// seed, block size, sink tokens), for a calibrated preset what its codecs were built from
// (CalibrationSource) and a checksum of each layer's codecs, and an FNV-1a 64 checksum of
// everything after its header; a truncated, corrupted or mismatched file gives a
// tq::Error that names the problem. Records are never loaded under other codecs than the
// ones they were encoded with. Saving never replaces an existing file unless `overwrite`
// is set (and then replaces it atomically).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"

namespace tq {

// Limits a loader applies before allocating anything a file asks for.
struct CacheLoadLimits {
  size_t max_pool_bytes = size_t(1) << 38;  // K + V pools of the cache load_cache builds
  int max_layer_heads = 1 << 16;            // n_layers * n_kv_heads (each makes two codecs)
  int max_head_dim = 1024;
};

// Version 2 added sink_tokens, the calibration record, codec checksums and the sink store;
// version 1 files still load.
constexpr uint32_t kCacheFileVersion = 3;

void save_cache(const KvCache& cache, const std::string& path, bool overwrite = false);
void save_sequence(const KvCache& cache, int seq, const std::string& path, bool overwrite = false);
// A new cache with the file's configuration and sequences, under their saved ids. A file of
// a calibrated preset needs `calibrated`: the codecs built again (build_calibrated) from the
// profile and options cache_calibration() names; anything else is refused.
KvCache load_cache(const std::string& path, const CacheLoadLimits& limits = {},
                   std::shared_ptr<const CalibratedCodecs> calibrated = nullptr);
// load_cache of any file, building a calibrated preset's codecs again from `profile` with the
// options the file records (cache_calibration); its calibration record must name this
// profile. `profile` may be null for a file without a preset; a preset file without one is a
// tq::Error naming the preset and ending with `profile_hint` (how the caller passes one).
KvCache load_cache_with_profile(const std::string& path, const KvProfile* profile, std::string_view profile_hint,
                                const CacheLoadLimits& limits = {});
// Appends the file's sequences to `cache` as new sequences; returns their ids. The file's
// shapes, seed, sink tokens, per-layer codecs and (presets) calibration source and codec
// checksums must equal the cache's (block size may differ).
std::vector<int> load_sequences(KvCache& cache, const std::string& path);

// The same in memory (the loader's fuzz target drives these).
std::vector<uint8_t> serialize_cache(const KvCache& cache, const std::vector<int>& seqs);
KvCache deserialize_cache(std::span<const uint8_t> bytes, const CacheLoadLimits& limits = {},
                          std::shared_ptr<const CalibratedCodecs> calibrated = nullptr);
std::vector<int> deserialize_sequences(KvCache& cache, std::span<const uint8_t> bytes);
// What a file's preset codecs were built from (nothing for a cache without a preset), read
// from its header and configuration: enough to build them again before loading.
std::optional<CalibrationSource> cache_calibration(std::span<const uint8_t> bytes);

}  // namespace tq
