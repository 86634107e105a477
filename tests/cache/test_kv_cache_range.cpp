// The cache's range policy (docs/RELIABILITY.md, docs/FORMATS.md "Range"): a NaN or Inf
// key or value is refused with a tq::Error naming layer, KV head, position, side and
// coordinate, before anything is written, and counted; keys and values beyond fp16's range
// are stored saturated, counted once per vector, and attention over them stays finite.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "turboquant/attention.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/range.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

KvCacheConfig range_config(const std::string& k_codec, const std::string& v_codec) {
  KvCacheConfig c;
  c.n_layers = 3;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.k_codec = k_codec;
  c.v_codec = v_codec;
  c.block_tokens = 8;
  c.max_tokens = 64;
  c.seed = 9;
  return c;
}

std::vector<float> gaussians(Rng& rng, size_t n, float scale = 1.f) {
  std::vector<float> v(n);
  for (float& x : v) x = scale * static_cast<float>(rng.gaussian());
  return v;
}

// Keys or values of `tokens` tokens: [tokens][n_kv_heads][head_dim].
std::vector<float> gaussians(Rng& rng, int tokens, const KvCacheConfig& c, float scale = 1.f) {
  return gaussians(rng, static_cast<size_t>(tokens) * c.n_kv_heads * c.head_dim, scale);
}

float& at(std::vector<float>& kv, const KvCacheConfig& c, int token, int head, int coord) {
  return kv[(static_cast<size_t>(token) * c.n_kv_heads + head) * c.head_dim + coord];
}

// The error of one append, or "" when it did not throw.
std::string append_error(KvCache& cache, int layer, int seq, int n, const std::vector<float>& k,
                         const std::vector<float>& v) {
  try {
    cache.append(layer, seq, n, k.data(), v.data());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(KvCacheRange, NonFiniteValueNamesLayerHeadAndPosition) {
  const KvCacheConfig c = range_config("turbo3", "q8_0");
  KvCache cache(c);
  Rng rng(1);
  const int seq = cache.add_sequence();
  const auto first = gaussians(rng, 10, c);
  cache.append(2, seq, 10, first.data(), first.data());
  const struct {
    float bad;
    const char* name;
  } cases[] = {{std::numeric_limits<float>::quiet_NaN(), "NaN"}, {kInf, "+Inf"}, {-kInf, "-Inf"}};
  for (const auto& bad : cases) {
    auto k = gaussians(rng, 4, c), v = gaussians(rng, 4, c);
    at(v, c, 2, 1, 7) = bad.bad;  // token 2 of the append: position 12
    const uint64_t before = range_events().nonfinite;
    EXPECT_EQ(append_error(cache, 2, seq, 4, k, v),
              std::string("KvCache::append: layer 2, KV head 1, position 12: V coordinate 7 is ") + bad.name +
                  " (non-finite keys and values are refused); nothing was written");
    EXPECT_EQ(range_events().nonfinite - before, 1u) << bad.name;
    EXPECT_EQ(cache.length(2, seq), 10) << "a refused append must not write";
  }
}

TEST(KvCacheRange, FirstBadValueInPositionOrderAndEveryBadVectorCounted) {
  const KvCacheConfig c = range_config("f16", "v3g32");
  KvCache cache(c);
  Rng rng(2);
  const int seq = cache.add_sequence();
  auto k = gaussians(rng, 5, c), v = gaussians(rng, 5, c);
  at(k, c, 4, 0, 0) = kInf;    // position 4, K head 0
  at(v, c, 3, 1, 63) = -kInf;  // position 3, V head 1: the first in position order
  at(k, c, 3, 1, 2) = kInf;    // position 3, K head 1: K comes before V at one position
  at(k, c, 3, 1, 9) = kInf;    // the same vector again: counted once
  const uint64_t before = range_events().nonfinite;
  EXPECT_EQ(append_error(cache, 0, seq, 5, k, v),
            "KvCache::append: layer 0, KV head 1, position 3: K coordinate 2 is +Inf (non-finite keys and values "
            "are refused); nothing was written");
  EXPECT_EQ(range_events().nonfinite - before, 3u);
  EXPECT_EQ(cache.length(0, seq), 0);
}

TEST(KvCacheRange, OverflowSaturatesCountsOncePerVectorAndAttentionStaysFinite) {
  for (const char* codec : {"turbo3", "q8_0", "f16", "v3g32", "rht4c", "turbo3p"}) {
    SCOPED_TRACE(codec);
    const KvCacheConfig c = range_config(codec, codec);
    KvCache cache(c);
    Rng rng(3);
    const int seq = cache.add_sequence();
    const auto normal = gaussians(rng, 6, c), huge = gaussians(rng, 5, c, 1e30f);
    const uint64_t before = range_events().saturated;
    cache.append(1, seq, 6, normal.data(), normal.data());
    EXPECT_EQ(range_events().saturated, before) << "unit-scale vectors never saturate";
    cache.append(1, seq, 5, huge.data(), huge.data());
    EXPECT_EQ(range_events().saturated - before, 5u * c.n_kv_heads * 2) << "each K and V vector once";

    AttentionParams p;
    p.n_heads = 4;
    p.scale = 0.125f;
    const auto q = gaussians(rng, static_cast<size_t>(11) * p.n_heads * c.head_dim);
    std::vector<float> out(q.size());
    attend(cache, 1, seq, q.data(), 11, 0, p, out.data());
    for (size_t i = 0; i < out.size(); ++i) ASSERT_TRUE(std::isfinite(out[i])) << "output " << i << " = " << out[i];
  }
}

}  // namespace
}  // namespace tq
