#pragma once
// tq_cache_config -> tq::KvCachePlan, shared by the CPU cache (cache.cpp) and the device
// cache (cuda.cpp): the codec names must be non-NULL; shapes are the plan's to check.
#include <string_view>

#include "guard.h"
#include "turboquant/cache_plan.h"

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
  return c;
}

// The plan both caches build from; `who` names the cache in its errors.
inline KvCachePlan cache_plan(const tq_cache_config* config, std::string_view who) {
  return KvCachePlan(kv_cache_config(config), who);
}

}  // namespace tq::capi
