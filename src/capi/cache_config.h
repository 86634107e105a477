#pragma once
// tq_cache_config -> tq::KvCachePlan, shared by the CPU cache (cache.cpp) and the device
// cache (cuda.cpp): the codec names must be non-NULL; shapes are the plan's to check. A
// calibrated preset's codecs are built here from config->profile.
#include <string>
#include <string_view>

#include "guard.h"
#include "profile.h"
#include "turboquant/cache_plan.h"
#include "turboquant/kv_profile.h"

namespace tq::capi {

inline KvCacheConfig kv_cache_config(const tq_cache_config* config) {
  require(config, "config");
  require(config->k_codec, "config->k_codec");
  require(config->v_codec, "config->v_codec");
  KvCacheConfig c;
  c.n_layers = config->n_layers;
  c.n_kv_heads = config->n_kv_heads;
  c.head_dim = config->head_dim;
  c.k_codec = config->k_codec;
  c.v_codec = config->v_codec;
  c.block_tokens = config->block_tokens;
  c.max_tokens = config->max_tokens;
  c.seed = config->seed;
  if (config->context < 0)
    throw ArgumentError{"config->context must be >= 0 (0 = max_tokens), got " + std::to_string(config->context)};
  CalibrationOptions opt;
  opt.context = config->context > 0 ? config->context : config->max_tokens;
  attach_preset_codecs(c, config->profile ? &config->profile->profile : nullptr, opt,
                       "set config->profile (tq_profile_load of the model's `tq calibrate` file)");
  return c;
}

// The plan both caches build from; `who` names the cache in its errors.
inline KvCachePlan cache_plan(const tq_cache_config* config, std::string_view who) {
  return KvCachePlan(kv_cache_config(config), who);
}

}  // namespace tq::capi
