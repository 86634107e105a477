#pragma once
// Small sessions with random records, tokens, logits and (optionally) a Q/K balance or a
// calibrated preset, for the session format and kill tests.
#include <cstring>
#include <memory>
#include <vector>

#include "core/calib_test_util.h"
#include "turboquant/cache_io.h"
#include "turboquant/kv_profile.h"
#include "turboquant/rng.h"
#include "turboquant/session.h"

namespace tq::test {

inline KvCacheConfig session_cache_config() {
  KvCacheConfig c;
  c.n_layers = 2;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.k_codec = "turbo3";
  c.v_codec = "q8_0";
  c.block_tokens = 16;
  c.max_tokens = 512;
  c.seed = 5;
  return c;
}

// A calibrated preset's cache (tq3 for K and V, one sink token, codecs built for 512
// positions) from a random profile that went through its file's bytes, as tq run finds it.
inline KvProfile preset_profile() {
  return deserialize_profile(serialize_profile(random_profile(7, 2, 4, 2, 64)));
}
inline CalibrationOptions preset_options() {
  CalibrationOptions o;
  o.context = 512;
  return o;
}
inline KvCacheConfig preset_cache_config(const KvProfile& p, const CalibrationOptions& o) {
  KvCacheConfig c = session_cache_config();
  c.k_codec = c.v_codec = "tq3";
  c.calibrated = std::make_shared<const CalibratedCodecs>(build_calibrated(p, *find_preset("tq3"), o));
  c.sink_tokens = c.calibrated->sink_tokens;
  return c;
}

// `n_tokens` positions of a cache of `cfg` (the Q/K balance only with the default codecs);
// the seed changes every byte that depends on it.
inline Session make_session(uint64_t seed, int n_tokens, bool balance, const KvCacheConfig& cfg = session_cache_config()) {
  KvCache cache(cfg);
  Rng rng(seed);
  const int s = cache.add_sequence();
  std::vector<float> k(size_t(n_tokens) * 2 * 64), v(k.size());
  for (int l = 0; l < 2; ++l) {
    for (auto& x : k) x = static_cast<float>(rng.gaussian());
    for (auto& x : v) x = static_cast<float>(rng.gaussian());
    cache.append(l, s, n_tokens, k.data(), v.data());
  }
  Session out;
  out.model = {1000 + seed, seed * 0x9e3779b97f4a7c15ull};
  out.k_codec = cfg.k_codec;
  out.v_codec = cfg.v_codec;
  if (balance) {
    std::vector<float> scale(2 * 2 * 64);
    for (auto& x : scale) x = 0.5f + static_cast<float>(rng.uniform());
    out.balance = QkBalance(2, 2, 64, scale);
  }
  for (int i = 0; i < n_tokens; ++i) out.tokens.push_back(static_cast<int32_t>(rng.below(1000)));
  for (int i = 0; i < 300; ++i) out.logits.push_back(static_cast<float>(rng.gaussian()));
  out.cache = serialize_cache(cache, {s});
  return out;
}

inline Session make_preset_session(uint64_t seed, int n_tokens) {
  return make_session(seed, n_tokens, false, preset_cache_config(preset_profile(), preset_options()));
}

}  // namespace tq::test
