#pragma once
// Small sessions with random records, tokens, logits and (optionally) a Q/K balance, for
// the session format and kill tests.
#include <cstring>
#include <vector>

#include "turboquant/cache_io.h"
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

// `n_tokens` positions; the seed changes every byte that depends on it.
inline Session make_session(uint64_t seed, int n_tokens, bool balance) {
  KvCache cache(session_cache_config());
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
  out.k_codec = "turbo3";
  out.v_codec = "q8_0";
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

}  // namespace tq::test
