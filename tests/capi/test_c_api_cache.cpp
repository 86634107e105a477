// C API: tq_cache (append, attend, sequences, save/load), checked against tq::KvCache and
// tq::attend on the same configuration.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "turboquant/attention.h"
#include "capi_test_util.h"
#include "turboquant/c_api.h"
#include "turboquant/kv_cache.h"

namespace {

constexpr int kLayers = 2, kKvHeads = 2, kHeads = 4, kDim = 64;

using tq::capi_test::random_floats;

tq_cache_config small_config(int n_threads = 1) {
  tq_cache_config c = tq_cache_config_default();
  c.n_layers = kLayers;
  c.n_kv_heads = kKvHeads;
  c.head_dim = kDim;
  c.k_codec = "turbo3";
  c.v_codec = "v3g32";
  c.block_tokens = 8;
  c.max_tokens = 64;
  c.seed = 9;
  c.n_threads = n_threads;
  return c;
}

// The C++ configuration the C API builds from `c`.
tq::KvCacheConfig cpp_config(const tq_cache_config& c) {
  tq::KvCacheConfig cc;
  cc.n_layers = c.n_layers;
  cc.n_kv_heads = c.n_kv_heads;
  cc.head_dim = c.head_dim;
  cc.k_codec = c.k_codec;
  cc.v_codec = c.v_codec;
  cc.block_tokens = c.block_tokens;
  cc.max_tokens = c.max_tokens;
  cc.seed = c.seed;
  return cc;
}

using tq::capi_test::temp_path;

struct CApiCacheHandle : ::testing::Test {
  tq_cache* cache = nullptr;
  void TearDown() override { tq_cache_destroy(cache); }
};

TEST(CApiCache, DefaultsAndErrors) {
  const tq_cache_config d = tq_cache_config_default();
  EXPECT_STREQ(d.k_codec, "f16");
  EXPECT_EQ(d.block_tokens, 32);
  EXPECT_EQ(d.n_threads, 1);
  tq_cache* c = nullptr;
  EXPECT_EQ(tq_cache_create(&d, &c), TQ_ERROR_LIBRARY);  // shapes left at 0
  EXPECT_NE(std::string(tq_last_error()).find("tq_cache_create: KvCache"), std::string::npos) << tq_last_error();
  EXPECT_EQ(c, nullptr);
  auto bad = small_config();
  bad.k_codec = "turbo9";
  EXPECT_EQ(tq_cache_create(&bad, &c), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("turbo9"), std::string::npos) << tq_last_error();
  bad = small_config(-1);
  EXPECT_EQ(tq_cache_create(&bad, &c), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("n_threads must be >= 0"), std::string::npos);
  bad = small_config();
  bad.v_codec = nullptr;
  EXPECT_EQ(tq_cache_create(&bad, &c), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("config->v_codec is NULL"), std::string::npos);
  EXPECT_EQ(tq_cache_create(nullptr, &c), TQ_ERROR_ARGUMENT);
  tq_cache_destroy(nullptr);
}

TEST_F(CApiCacheHandle, SequencesLengthsAndConfig) {
  const auto cfg = small_config();
  ASSERT_EQ(tq_cache_create(&cfg, &cache), TQ_OK) << tq_last_error();
  int a = -1, b = -1;
  ASSERT_EQ(tq_cache_add_sequence(cache, &a), TQ_OK);
  ASSERT_EQ(tq_cache_add_sequence(cache, &b), TQ_OK);
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  int ids[4] = {-1, -1, -1, -1}, count = 0;
  ASSERT_EQ(tq_cache_sequences(cache, ids, 1, &count), TQ_OK);
  EXPECT_EQ(count, 2);  // the total, even when the buffer holds fewer
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], -1);
  ASSERT_EQ(tq_cache_remove_sequence(cache, a), TQ_OK);
  ASSERT_EQ(tq_cache_sequences(cache, ids, 4, &count), TQ_OK);
  EXPECT_EQ(count, 1);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tq_cache_remove_sequence(cache, a), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("no live sequence 0"), std::string::npos) << tq_last_error();
  EXPECT_EQ(tq_cache_sequences(cache, nullptr, 2, &count), TQ_ERROR_ARGUMENT);

  int len = -1;
  ASSERT_EQ(tq_cache_length(cache, 1, b, &len), TQ_OK);
  EXPECT_EQ(len, 0);
  EXPECT_EQ(tq_cache_length(cache, kLayers, b, &len), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("out of range"), std::string::npos) << tq_last_error();

  tq_cache_config got{};
  ASSERT_EQ(tq_cache_get_config(cache, &got), TQ_OK);
  EXPECT_EQ(got.n_layers, kLayers);
  EXPECT_EQ(got.head_dim, kDim);
  EXPECT_STREQ(got.k_codec, "turbo3");
  EXPECT_STREQ(got.v_codec, "v3g32");
  EXPECT_EQ(got.seed, 9u);
  size_t per_token = 0, used = 0;
  ASSERT_EQ(tq_cache_bytes(cache, &per_token, &used), TQ_OK);
  EXPECT_GT(per_token, 0u);
}

// Appending through the C API and attending gives what tq::KvCache + tq::attend give.
TEST_F(CApiCacheHandle, AttendEqualsCpp) {
  const auto cfg = small_config(2);
  ASSERT_EQ(tq_cache_create(&cfg, &cache), TQ_OK) << tq_last_error();
  tq::KvCache ref(cpp_config(cfg));
  int seq = -1;
  ASSERT_EQ(tq_cache_add_sequence(cache, &seq), TQ_OK);
  ASSERT_EQ(ref.add_sequence(), seq);

  const int tokens = 21;
  const auto k = random_floats(tokens * kKvHeads * kDim, 1);
  const auto v = random_floats(tokens * kKvHeads * kDim, 2);
  for (int layer = 0; layer < kLayers; ++layer) {
    // In two pieces, as prefill then decode would append.
    ASSERT_EQ(tq_cache_append(cache, layer, seq, 20, k.data(), v.data()), TQ_OK) << tq_last_error();
    ASSERT_EQ(tq_cache_append(cache, layer, seq, 1, k.data() + 20 * kKvHeads * kDim, v.data() + 20 * kKvHeads * kDim),
              TQ_OK);
    ref.append(layer, seq, tokens, k.data(), v.data());
  }
  const int n_q = 3;
  const auto q = random_floats(n_q * kHeads * kDim, 3);
  tq_attention_params p{kHeads, 1.0f / std::sqrt(float(kDim)), 0, 0.0f};
  tq::AttentionParams rp;
  rp.n_heads = kHeads;
  rp.scale = p.scale;
  for (int layer = 0; layer < kLayers; ++layer) {
    std::vector<float> out(q.size()), want(q.size());
    ASSERT_EQ(tq_cache_attend(cache, layer, seq, q.data(), n_q, tokens - n_q, &p, out.data()), TQ_OK)
        << tq_last_error();
    tq::attend_reference(ref, layer, seq, q.data(), n_q, tokens - n_q, rp, want.data());
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], 1e-4f) << "layer " << layer << " i " << i;
  }
  std::vector<float> out(q.size(), 7.0f);
  EXPECT_EQ(tq_cache_attend(cache, 0, seq, q.data(), n_q, tokens - 1, &p, out.data()), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("tq_cache_attend: "), std::string::npos);
  EXPECT_EQ(out[0], 7.0f);  // refused before anything was written
  p.n_heads = 3;            // not a multiple of n_kv_heads
  EXPECT_EQ(tq_cache_attend(cache, 0, seq, q.data(), 1, 0, &p, out.data()), TQ_ERROR_LIBRARY);
  EXPECT_EQ(tq_cache_attend(cache, 0, seq, q.data(), 1, 0, nullptr, out.data()), TQ_ERROR_ARGUMENT);
}

TEST_F(CApiCacheHandle, PoolFullAndNanLeaveTheCacheAsItWas) {
  const auto cfg = small_config();
  ASSERT_EQ(tq_cache_create(&cfg, &cache), TQ_OK);
  int seq = -1;
  ASSERT_EQ(tq_cache_add_sequence(cache, &seq), TQ_OK);
  auto k = random_floats(65 * kKvHeads * kDim, 4);
  const auto v = random_floats(65 * kKvHeads * kDim, 5);
  EXPECT_EQ(tq_cache_append(cache, 0, seq, 65, k.data(), v.data()), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("pool full"), std::string::npos) << tq_last_error();
  k[3] = NAN;
  EXPECT_EQ(tq_cache_append(cache, 0, seq, 4, k.data(), v.data()), TQ_ERROR_LIBRARY);
  int len = -1;
  ASSERT_EQ(tq_cache_length(cache, 0, seq, &len), TQ_OK);
  EXPECT_EQ(len, 0);
  EXPECT_EQ(tq_cache_append(cache, 0, seq, 1, nullptr, v.data()), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("tq_cache_append: k is NULL"), std::string::npos);
}

TEST_F(CApiCacheHandle, SaveLoadRoundTripIsExact) {
  const auto cfg = small_config();
  ASSERT_EQ(tq_cache_create(&cfg, &cache), TQ_OK);
  int s0 = -1, s1 = -1;
  ASSERT_EQ(tq_cache_add_sequence(cache, &s0), TQ_OK);
  ASSERT_EQ(tq_cache_add_sequence(cache, &s1), TQ_OK);
  ASSERT_EQ(tq_cache_remove_sequence(cache, s0), TQ_OK);  // ids survive the round trip
  const auto k = random_floats(10 * kKvHeads * kDim, 6), v = random_floats(10 * kKvHeads * kDim, 7);
  for (int layer = 0; layer < kLayers; ++layer)
    ASSERT_EQ(tq_cache_append(cache, layer, s1, 10, k.data(), v.data()), TQ_OK);

  const std::string path = temp_path("roundtrip");
  std::filesystem::remove(path);
  ASSERT_EQ(tq_cache_save(cache, path.c_str(), 0), TQ_OK) << tq_last_error();
  EXPECT_EQ(tq_cache_save(cache, path.c_str(), 0), TQ_ERROR_LIBRARY);  // never replaced silently
  EXPECT_NE(std::string(tq_last_error()).find(path), std::string::npos) << tq_last_error();
  ASSERT_EQ(tq_cache_save(cache, path.c_str(), 1), TQ_OK) << tq_last_error();

  tq_cache* loaded = nullptr;
  ASSERT_EQ(tq_cache_load(path.c_str(), 0, &loaded), TQ_OK) << tq_last_error();
  int ids[2], count = 0;
  ASSERT_EQ(tq_cache_sequences(loaded, ids, 2, &count), TQ_OK);
  ASSERT_EQ(count, 1);
  EXPECT_EQ(ids[0], s1);
  tq_cache_config got{};
  ASSERT_EQ(tq_cache_get_config(loaded, &got), TQ_OK);
  EXPECT_STREQ(got.k_codec, "turbo3");
  EXPECT_EQ(got.n_threads, 0);
  const auto q = random_floats(kHeads * kDim, 8);
  const tq_attention_params p{kHeads, 0.125f, 0, 0.0f};
  std::vector<float> a(q.size()), b(q.size());
  for (int layer = 0; layer < kLayers; ++layer) {
    ASSERT_EQ(tq_cache_attend(cache, layer, s1, q.data(), 1, 9, &p, a.data()), TQ_OK);
    ASSERT_EQ(tq_cache_attend(loaded, layer, s1, q.data(), 1, 9, &p, b.data()), TQ_OK);
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6f);
  }
  tq_cache_destroy(loaded);

  // A truncated file is refused with a message, and no handle is returned.
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size / 2);
  loaded = nullptr;
  EXPECT_EQ(tq_cache_load(path.c_str(), 1, &loaded), TQ_ERROR_LIBRARY);
  EXPECT_EQ(loaded, nullptr);
  EXPECT_GT(std::strlen(tq_last_error()), std::strlen("tq_cache_load: "));
  std::filesystem::remove(path);
  EXPECT_EQ(tq_cache_load(path.c_str(), 1, &loaded), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find(path), std::string::npos) << tq_last_error();
  EXPECT_EQ(tq_cache_load(path.c_str(), -2, &loaded), TQ_ERROR_ARGUMENT);
}

}  // namespace
