// C API: the CPU paged KV cache (tq_cache), attention over it, save and load.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "cache_config.h"
#include "guard.h"
#include "profile.h"
#include "turboquant/attention.h"
#include "turboquant/cache_io.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/thread_pool.h"

using tq::capi::ArgumentError;
using tq::capi::guarded;
using tq::capi::require;

// The cache and the threads its calls run on. A pool of one thread would only add
// hand-off overhead, so n_threads == 1 keeps `pool` empty and the work on the caller.
struct tq_cache {
  tq::KvCache cache;
  int n_threads;
  std::unique_ptr<tq::ThreadPool> pool;

  tq_cache(tq::KvCache c, int threads)
      : cache(std::move(c)), n_threads(threads),
        pool(threads == 1 ? nullptr : std::make_unique<tq::ThreadPool>(threads)) {}
};

namespace {

int checked_threads(int n_threads) {
  if (n_threads < 0)
    throw ArgumentError{"n_threads must be >= 0 (0 = all cores), got " + std::to_string(n_threads)};
  return n_threads;
}

}  // namespace

extern "C" {

tq_cache_config tq_cache_config_default(void) {
  tq_cache_config c{};
  c.k_codec = "f16";
  c.v_codec = "f16";
  c.block_tokens = 32;
  c.max_tokens = 4096;
  c.seed = 0;
  c.n_threads = 1;
  return c;
}

tq_status tq_cache_create(const tq_cache_config* config, tq_cache** cache) {
  return guarded("tq_cache_create", [&] {
    require(cache, "cache");
    tq::KvCachePlan plan = tq::capi::cache_plan(config, "KvCache");
    const int threads = checked_threads(config->n_threads);
    *cache = new tq_cache(tq::KvCache(std::move(plan)), threads);
  });
}

void tq_cache_destroy(tq_cache* cache) { delete cache; }

tq_status tq_cache_get_config(const tq_cache* cache, tq_cache_config* config) {
  return guarded("tq_cache_get_config", [&] {
    require(cache, "cache");
    require(config, "config");
    const tq::KvCacheConfig& c = cache->cache.config();
    tq_cache_config out = tq_cache_config_default();
    out.n_layers = c.n_layers;
    out.n_kv_heads = c.n_kv_heads;
    out.head_dim = c.head_dim;
    out.k_codec = c.k_codec.c_str();  // owned by the cache, as the header says
    out.v_codec = c.v_codec.c_str();
    out.block_tokens = c.block_tokens;
    out.max_tokens = c.max_tokens;
    out.seed = c.seed;
    out.n_threads = cache->n_threads;
    out.profile = nullptr;  // not kept: the cache holds the codecs built from it
    out.context = c.calibrated ? c.calibrated->source.options.context : 0;
    *config = out;
  });
}

tq_status tq_cache_add_sequence(tq_cache* cache, int* seq) {
  return guarded("tq_cache_add_sequence", [&] {
    require(cache, "cache");
    require(seq, "seq");
    *seq = cache->cache.add_sequence();
  });
}

tq_status tq_cache_remove_sequence(tq_cache* cache, int seq) {
  return guarded("tq_cache_remove_sequence", [&] {
    require(cache, "cache");
    cache->cache.remove_sequence(seq);
  });
}

tq_status tq_cache_sequences(const tq_cache* cache, int* ids, int capacity, int* count) {
  return guarded("tq_cache_sequences", [&] {
    require(cache, "cache");
    require(count, "count");
    if (capacity < 0) throw ArgumentError{"capacity must be >= 0, got " + std::to_string(capacity)};
    if (capacity > 0) require(ids, "ids");
    const std::vector<int> live = cache->cache.sequences();
    std::copy_n(live.begin(), std::min<size_t>(live.size(), static_cast<size_t>(capacity)), ids);
    *count = static_cast<int>(live.size());
  });
}

tq_status tq_cache_length(const tq_cache* cache, int layer, int seq, int* length) {
  return guarded("tq_cache_length", [&] {
    require(cache, "cache");
    require(length, "length");
    *length = cache->cache.length(layer, seq);
  });
}

tq_status tq_cache_bytes(const tq_cache* cache, size_t* bytes_per_token, size_t* bytes_used) {
  return guarded("tq_cache_bytes", [&] {
    require(cache, "cache");
    if (bytes_per_token) *bytes_per_token = cache->cache.bytes_per_token();
    if (bytes_used) *bytes_used = cache->cache.bytes_used();
  });
}

tq_status tq_cache_append(tq_cache* cache, int layer, int seq, int n_tokens, const float* k,
                          const float* v) {
  return guarded("tq_cache_append", [&] {
    require(cache, "cache");
    require(k, "k");
    require(v, "v");
    cache->cache.append(layer, seq, n_tokens, k, v, cache->pool.get());
  });
}

tq_status tq_cache_attend(const tq_cache* cache, int layer, int seq, const float* q, int n_q,
                          int q_pos0, const tq_attention_params* params, float* out) {
  return guarded("tq_cache_attend", [&] {
    require(cache, "cache");
    require(q, "q");
    require(params, "params");
    require(out, "out");
    tq::AttentionParams p;
    p.n_heads = params->n_heads;
    p.scale = params->scale;
    p.window = params->window;
    p.softcap = params->softcap;
    tq::attend(cache->cache, layer, seq, q, n_q, q_pos0, p, out, cache->pool.get());
  });
}

tq_status tq_cache_save(const tq_cache* cache, const char* path, int overwrite) {
  return guarded("tq_cache_save", [&] {
    require(cache, "cache");
    require(path, "path");
    tq::save_cache(cache->cache, path, overwrite != 0);
  });
}

tq_status tq_cache_load(const char* path, int n_threads, tq_cache** cache) {
  return guarded("tq_cache_load", [&] {
    require(path, "path");
    require(cache, "cache");
    const int threads = checked_threads(n_threads);
    *cache = new tq_cache(
        tq::load_cache_with_profile(path, nullptr, "load it with tq_cache_load_profile and that profile"), threads);
  });
}

tq_status tq_cache_load_profile(const char* path, const tq_profile* profile, int n_threads, tq_cache** cache) {
  return guarded("tq_cache_load_profile", [&] {
    require(path, "path");
    require(cache, "cache");
    const int threads = checked_threads(n_threads);
    *cache = new tq_cache(tq::load_cache_with_profile(path, profile ? &profile->profile : nullptr,
                                                      "pass the profile its codecs were built from"),
                          threads);
  });
}

}  // extern "C"
