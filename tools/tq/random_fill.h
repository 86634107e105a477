#pragma once
// `depth` tokens of N(0, 1) keys and values appended to every layer of a sequence: how
// `tq bench model --fill random` and the kernel bench's deep-cache rows reach a depth in
// seconds. The vectors are windows at random offsets into one pool of Gaussians (drawing
// every value costs more than the encode it feeds).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "turboquant/kv_cache.h"
#include "turboquant/rng.h"

namespace tq {

inline void fill_random_tokens(KvCache& cache, int seq, int depth, Rng& rng) {
  const KvCacheConfig& cfg = cache.config();
  constexpr int kStep = 256;
  const size_t step = static_cast<size_t>(kStep) * cfg.n_kv_heads * cfg.head_dim;
  std::vector<float> pool(8 * step);
  for (float& x : pool) x = static_cast<float>(rng.gaussian());
  const auto window = [&] { return pool.data() + rng.below(static_cast<uint32_t>(pool.size() - step)); };
  for (int layer = 0; layer < cfg.n_layers; ++layer)
    for (int t = 0; t < depth; t += kStep) cache.append(layer, seq, std::min(kStep, depth - t), window(), window());
}

}  // namespace tq
