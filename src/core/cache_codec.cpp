// The codec of one layer / KV head / side of a paged cache: the one rule the CPU cache
// and the CUDA cache both build their codecs with, so their pools are interchangeable.
#include <string>

#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/rng.h"

namespace tq {

std::string cache_codec_name(const KvCacheConfig& cfg, int layer, bool value) {
  if (auto it = cfg.layer_codecs.find(layer); it != cfg.layer_codecs.end())
    return value ? it->second.second : it->second.first;
  return value ? cfg.v_codec : cfg.k_codec;
}

Codec make_cache_codec(const KvCacheConfig& cfg, int layer, int kv_head, bool value) {
  const std::string name = cache_codec_name(cfg, layer, value);
  try {
    if (const CodecSpec* preset = find_preset(name)) {
      const CalibratedCodecs* cc = cfg.calibrated.get();
      if (!cc || cc->preset != preset)
        throw Error("codec '" + name + "' is a calibrated preset: the cache needs its calibrated codecs (" +
                    (cc ? "it holds " + std::string(cc->preset->name) + "'s" : "none given") + ")");
      const auto& sides = value ? cc->v : cc->k;
      if (sides.size() != static_cast<size_t>(cfg.n_layers) ||
          sides[layer].maps.size() != static_cast<size_t>(cfg.n_kv_heads) ||
          sides[layer].maps[kv_head]->dim != cfg.head_dim)
        throw Error("calibrated codecs do not match the cache's shape");
      return Codec::make_calibrated(*preset, sides[layer].maps[kv_head], sides[layer].groups);
    }
    const uint64_t seed = derive_seed(cfg.seed, static_cast<uint64_t>(layer) * 65536u +
                                                    static_cast<uint64_t>(kv_head) * 2u + (value ? 1u : 0u));
    return Codec::make(name, cfg.head_dim, seed);
  } catch (const Error& e) {
    throw Error("KvCache: layer " + std::to_string(layer) + " " + (value ? "V" : "K") + ": " + e.what());
  }
}

}  // namespace tq
