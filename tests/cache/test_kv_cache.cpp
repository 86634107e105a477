// The paged cache: configuration checks, quantize-on-write bytes (identical to
// Codec::encode), the documented block layout, ragged sequences sharing the pool, block
// reuse, and errors that leave the cache unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/rng.h"
#include "turboquant/thread_pool.h"

namespace tq {
namespace {

KvCacheConfig small_config() {
  KvCacheConfig c;
  c.n_layers = 3;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.k_codec = "turbo3";
  c.v_codec = "v3g32";
  c.layer_codecs[0] = {"q8_0", "q8_0"};
  c.block_tokens = 8;
  c.max_tokens = 64;
  c.seed = 5;
  return c;
}

std::vector<float> random_kv(Rng& rng, int n, const KvCacheConfig& c) {
  std::vector<float> v(static_cast<size_t>(n) * c.n_kv_heads * c.head_dim);
  for (float& x : v) x = static_cast<float>(rng.gaussian());
  return v;
}

TEST(KvCache, RejectsBadConfigs) {
  auto bad = [](auto edit) {
    KvCacheConfig c = small_config();
    edit(c);
    EXPECT_THROW(KvCache{c}, Error);
  };
  bad([](KvCacheConfig& c) { c.k_codec = "turbo9"; });
  bad([](KvCacheConfig& c) { c.n_layers = 0; });
  bad([](KvCacheConfig& c) { c.head_dim = -4; });
  bad([](KvCacheConfig& c) { c.block_tokens = 0; });
  bad([](KvCacheConfig& c) { c.max_tokens = 0; });
  bad([](KvCacheConfig& c) { c.layer_codecs[3] = {"f16", "f16"}; });  // no layer 3
  bad([](KvCacheConfig& c) { c.head_dim = 48; });                     // q8_0 needs multiples of 32
  try {
    KvCacheConfig c = small_config();
    c.v_codec = "nope";
    KvCache cache(c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
}

TEST(KvCache, CodecsSeedsAndSizesFollowTheContract) {
  const KvCacheConfig c = small_config();
  KvCache cache(c);
  size_t per_token = 0;
  for (int l = 0; l < c.n_layers; ++l)
    for (int h = 0; h < c.n_kv_heads; ++h) {
      EXPECT_EQ(cache.k_codec(l, h).name(), l == 0 ? "q8_0" : "turbo3");
      EXPECT_EQ(cache.v_codec(l, h).name(), l == 0 ? "q8_0" : "v3g32");
      EXPECT_EQ(cache.k_codec(l, h).seed(), derive_seed(c.seed, l * 65536 + h * 2));
      EXPECT_EQ(cache.v_codec(l, h).seed(), derive_seed(c.seed, l * 65536 + h * 2 + 1));
      per_token += cache.k_codec(l, h).record_bytes() + cache.v_codec(l, h).record_bytes();
    }
  EXPECT_EQ(cache.bytes_per_token(), per_token);
  EXPECT_EQ(cache.num_blocks(), 8);
  EXPECT_EQ(cache.bytes_used(), 0u);
  EXPECT_EQ(cache.k_block_bytes(1), cache.k_record_bytes(1) * 8 * 2);
}

TEST(KvCache, WritesEncodedRecordsWhereTheLayoutSays) {
  const KvCacheConfig c = small_config();
  KvCache cache(c);
  Rng rng(3);
  const int a = cache.add_sequence(), b = cache.add_sequence();
  ThreadPool pool(2);
  // Interleave a prefill chunk, single tokens and a second sequence, per layer.
  std::vector<std::vector<float>> ka(c.n_layers), va(c.n_layers);
  for (int step : {11, 1, 1, 6}) {
    for (int l = 0; l < c.n_layers; ++l) {
      auto k = random_kv(rng, step, c), v = random_kv(rng, step, c);
      cache.append(l, a, step, k.data(), v.data(), l == 1 ? &pool : nullptr);
      ka[l].insert(ka[l].end(), k.begin(), k.end());
      va[l].insert(va[l].end(), v.begin(), v.end());
      auto kb = random_kv(rng, 3, c);
      cache.append(l, b, 3, kb.data(), kb.data());
    }
  }
  EXPECT_EQ(cache.length(2, a), 19);
  EXPECT_EQ(cache.length(0, b), 12);
  EXPECT_EQ(cache.block_table(a).size(), 3u);  // 19 tokens in blocks of 8
  EXPECT_EQ(cache.bytes_used(), 5 * (cache.bytes_per_token() * 8));
  const int bt = c.block_tokens;
  for (int l = 0; l < c.n_layers; ++l)
    for (int t = 0; t < 19; ++t)
      for (int h = 0; h < c.n_kv_heads; ++h) {
        const Codec& kc = cache.k_codec(l, h);
        const Codec& vc = cache.v_codec(l, h);
        std::vector<uint8_t> kr(kc.record_bytes()), vr(vc.record_bytes());
        kc.encode(&ka[l][(static_cast<size_t>(t) * c.n_kv_heads + h) * c.head_dim], kr.data());
        vc.encode(&va[l][(static_cast<size_t>(t) * c.n_kv_heads + h) * c.head_dim], vr.data());
        const uint8_t* kp = cache.k_pool(l) + cache.k_block_bytes(l) * cache.block_table(a)[t / bt] +
                            cache.k_record_bytes(l) * (static_cast<size_t>(h) * bt + t % bt);
        const uint8_t* vp = cache.v_pool(l) + cache.v_block_bytes(l) * cache.block_table(a)[t / bt] +
                            cache.v_record_bytes(l) * (static_cast<size_t>(h) * bt + t % bt);
        ASSERT_EQ(kp, cache.k_record(l, a, h, t));
        ASSERT_EQ(vp, cache.v_record(l, a, h, t));
        ASSERT_EQ(std::memcmp(kp, kr.data(), kr.size()), 0) << "layer " << l << " token " << t << " head " << h;
        ASSERT_EQ(std::memcmp(vp, vr.data(), vr.size()), 0) << "layer " << l << " token " << t << " head " << h;
      }
}

TEST(KvCache, ErrorsLeaveTheCacheUnchanged) {
  const KvCacheConfig c = small_config();
  KvCache cache(c);
  Rng rng(4);
  const int s = cache.add_sequence();
  auto k = random_kv(rng, 60, c);
  cache.append(0, s, 60, k.data(), k.data());
  const auto blocks = cache.block_table(s);
  auto more = random_kv(rng, 5, c);
  EXPECT_THROW(cache.append(0, s, 5, more.data(), more.data()), Error);  // 65 > 64 tokens
  EXPECT_EQ(cache.length(0, s), 60);
  EXPECT_EQ(cache.block_table(s), blocks);
  more[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(cache.append(1, s, 1, more.data(), more.data()), Error);
  EXPECT_EQ(cache.length(1, s), 0);
  EXPECT_THROW(cache.append(3, s, 1, k.data(), k.data()), Error);   // no layer 3
  EXPECT_THROW(cache.append(0, 7, 1, k.data(), k.data()), Error);   // no sequence 7
  EXPECT_THROW(cache.k_record(0, s, 0, 60), Error);                 // past the end
}

TEST(KvCache, RemovedSequencesFreeTheirBlocks) {
  KvCacheConfig c = small_config();
  KvCache cache(c);
  Rng rng(5);
  auto k = random_kv(rng, 40, c);
  const int a = cache.add_sequence();
  const int b = cache.add_sequence();
  cache.append(0, a, 40, k.data(), k.data());
  cache.append(0, b, 24, k.data(), k.data());
  EXPECT_EQ(cache.free_blocks(), 0);
  cache.remove_sequence(a);
  EXPECT_FALSE(cache.has_sequence(a));
  EXPECT_EQ(cache.free_blocks(), 5);
  EXPECT_EQ(cache.add_sequence(), a);  // ids are reused, smallest first
  cache.append(0, a, 40, k.data(), k.data());
  EXPECT_EQ(cache.length(0, a), 40);
  EXPECT_EQ(cache.sequences(), (std::vector<int>{a, b}));
  EXPECT_THROW(cache.remove_sequence(9), Error);
}

}  // namespace
}  // namespace tq
