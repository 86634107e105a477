// C API: calibration profiles and the calibrated presets (tq_profile_load, config->profile,
// tq_cache_load_profile), checked against tq::KvCache built from the same profile.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../core/calib_test_util.h"
#include "turboquant/attention.h"
#include "capi_test_util.h"
#include "turboquant/c_api.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"

namespace {

constexpr int kLayers = 2, kKvHeads = 2, kHeads = 4, kDim = 64, kContext = 64;

using tq::capi_test::random_floats;

std::string temp_path(const char* name) { return tq::capi_test::temp_path(std::string("profile_") + name); }

// A random profile of the test's shapes, saved where tq_profile_load reads it.
struct ProfileFile {
  tq::KvProfile profile;
  std::string path;
  ProfileFile(uint64_t seed, const char* name)
      : profile(tq::test::random_profile(seed, kLayers, kHeads, kKvHeads, kDim)), path(temp_path(name)) {
    tq::save_profile(profile, path);
    profile = tq::load_profile(path);  // as the file holds it (the format rounds the statistics)
  }
  ~ProfileFile() { std::filesystem::remove(path); }
};

tq_cache_config preset_config(const tq_profile* profile) {
  tq_cache_config c = tq_cache_config_default();
  c.n_layers = kLayers;
  c.n_kv_heads = kKvHeads;
  c.head_dim = kDim;
  c.k_codec = "tq3";
  c.v_codec = "tq3";
  c.block_tokens = 8;
  c.max_tokens = 2 * kContext;
  c.seed = 3;
  c.profile = profile;
  c.context = kContext;
  return c;
}

struct CApiProfile : ::testing::Test {
  ProfileFile file{11, "a"};
  tq_profile* profile = nullptr;
  tq_cache* cache = nullptr;
  void SetUp() override { ASSERT_EQ(tq_profile_load(file.path.c_str(), &profile), TQ_OK) << tq_last_error(); }
  void TearDown() override {
    tq_cache_destroy(cache);
    tq_profile_destroy(profile);
  }
};

TEST_F(CApiProfile, LoadAndShape) {
  int layers = 0, kv_heads = 0, dim = 0;
  ASSERT_EQ(tq_profile_shape(profile, &layers, &kv_heads, &dim), TQ_OK);
  EXPECT_EQ(layers, kLayers);
  EXPECT_EQ(kv_heads, kKvHeads);
  EXPECT_EQ(dim, kDim);
  EXPECT_EQ(tq_profile_shape(profile, nullptr, nullptr, nullptr), TQ_OK);
  EXPECT_EQ(tq_profile_shape(nullptr, &layers, nullptr, nullptr), TQ_ERROR_ARGUMENT);

  tq_profile* other = nullptr;
  const std::string missing = temp_path("missing");
  EXPECT_EQ(tq_profile_load(missing.c_str(), &other), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("missing"), std::string::npos) << tq_last_error();
  EXPECT_EQ(other, nullptr);
  const std::string garbage = temp_path("garbage");
  std::ofstream(garbage) << "not a profile";
  EXPECT_EQ(tq_profile_load(garbage.c_str(), &other), TQ_ERROR_LIBRARY);
  EXPECT_EQ(other, nullptr);
  std::filesystem::remove(garbage);
  EXPECT_EQ(tq_profile_load(nullptr, &other), TQ_ERROR_ARGUMENT);
  tq_profile_destroy(nullptr);
}

TEST_F(CApiProfile, PresetWithoutProfileSaysHowToPassOne) {
  const tq_cache_config c = preset_config(nullptr);
  EXPECT_EQ(tq_cache_create(&c, &cache), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("tq3"), std::string::npos) << tq_last_error();
  EXPECT_NE(std::string(tq_last_error()).find("config->profile"), std::string::npos) << tq_last_error();
  EXPECT_EQ(cache, nullptr);
  tq_cache_config bad = preset_config(profile);
  bad.context = -1;
  EXPECT_EQ(tq_cache_create(&bad, &cache), TQ_ERROR_ARGUMENT);
  bad = preset_config(profile);
  bad.n_layers = kLayers + 1;  // the profile has two layers
  EXPECT_EQ(tq_cache_create(&bad, &cache), TQ_ERROR_LIBRARY);
  EXPECT_EQ(cache, nullptr);
}

// The C API's preset cache holds what tq::KvCache with the same codecs holds: attention equal,
// sinks included (the preset keeps its first tokens exact), and it saves and loads back only
// with the profile it was built from.
TEST_F(CApiProfile, PresetCacheEqualsCppAndRoundTrips) {
  const tq_cache_config cfg = preset_config(profile);
  ASSERT_EQ(tq_cache_create(&cfg, &cache), TQ_OK) << tq_last_error();
  tq_cache_config got{};
  ASSERT_EQ(tq_cache_get_config(cache, &got), TQ_OK);
  EXPECT_STREQ(got.k_codec, "tq3");
  EXPECT_EQ(got.profile, nullptr);
  EXPECT_EQ(got.context, kContext);

  tq::KvCacheConfig cc;
  cc.n_layers = kLayers;
  cc.n_kv_heads = kKvHeads;
  cc.head_dim = kDim;
  cc.k_codec = cc.v_codec = "tq3";
  cc.block_tokens = cfg.block_tokens;
  cc.max_tokens = cfg.max_tokens;
  cc.seed = cfg.seed;
  tq::CalibrationOptions opt;
  opt.context = kContext;
  tq::attach_preset_codecs(cc, &file.profile, opt, "");
  ASSERT_GT(cc.sink_tokens, 0);
  tq::KvCache ref(cc);

  int seq = -1;
  ASSERT_EQ(tq_cache_add_sequence(cache, &seq), TQ_OK);
  ASSERT_EQ(ref.add_sequence(), seq);
  const int tokens = 23;
  const auto k = random_floats(tokens * kKvHeads * kDim, 1), v = random_floats(tokens * kKvHeads * kDim, 2);
  for (int layer = 0; layer < kLayers; ++layer) {
    ASSERT_EQ(tq_cache_append(cache, layer, seq, tokens, k.data(), v.data()), TQ_OK) << tq_last_error();
    ref.append(layer, seq, tokens, k.data(), v.data());
  }
  size_t per_token = 0;
  ASSERT_EQ(tq_cache_bytes(cache, &per_token, nullptr), TQ_OK);
  EXPECT_EQ(per_token, ref.bytes_per_token());

  const int n_q = 2;
  const auto q = random_floats(n_q * kHeads * kDim, 3);
  const tq_attention_params p{kHeads, 1.0f / std::sqrt(float(kDim)), 0, 0.0f};
  tq::AttentionParams rp;
  rp.n_heads = kHeads;
  rp.scale = p.scale;
  std::vector<std::vector<float>> outs;
  for (int layer = 0; layer < kLayers; ++layer) {
    std::vector<float> out(q.size()), want(q.size());
    ASSERT_EQ(tq_cache_attend(cache, layer, seq, q.data(), n_q, tokens - n_q, &p, out.data()), TQ_OK)
        << tq_last_error();
    tq::attend_reference(ref, layer, seq, q.data(), n_q, tokens - n_q, rp, want.data());
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], 1e-4f) << "layer " << layer << " i " << i;
    outs.push_back(out);
  }

  const std::string path = temp_path("cache");
  std::filesystem::remove(path);
  ASSERT_EQ(tq_cache_save(cache, path.c_str(), 0), TQ_OK) << tq_last_error();
  tq_cache* loaded = nullptr;
  EXPECT_EQ(tq_cache_load(path.c_str(), 1, &loaded), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("tq_cache_load_profile"), std::string::npos) << tq_last_error();
  EXPECT_EQ(loaded, nullptr);
  EXPECT_EQ(tq_cache_load_profile(path.c_str(), nullptr, 1, &loaded), TQ_ERROR_LIBRARY);
  EXPECT_EQ(loaded, nullptr);

  {  // another model's profile is refused, naming the profile
    ProfileFile other_file(12, "b");
    tq_profile* other = nullptr;
    ASSERT_EQ(tq_profile_load(other_file.path.c_str(), &other), TQ_OK);
    EXPECT_EQ(tq_cache_load_profile(path.c_str(), other, 1, &loaded), TQ_ERROR_LIBRARY);
    EXPECT_NE(std::string(tq_last_error()).find("profile"), std::string::npos) << tq_last_error();
    EXPECT_EQ(loaded, nullptr);
    tq_profile_destroy(other);
  }

  ASSERT_EQ(tq_cache_load_profile(path.c_str(), profile, 1, &loaded), TQ_OK) << tq_last_error();
  for (int layer = 0; layer < kLayers; ++layer) {
    std::vector<float> out(q.size());
    ASSERT_EQ(tq_cache_attend(loaded, layer, seq, q.data(), n_q, tokens - n_q, &p, out.data()), TQ_OK);
    EXPECT_EQ(out, outs[layer]) << "layer " << layer;  // bit-exact round trip
  }
  tq_cache_destroy(loaded);
  std::filesystem::remove(path);
}

// tq_cache_load_profile reads ordinary files too (the profile is then not needed).
TEST_F(CApiProfile, LoadProfileReadsOrdinaryFiles) {
  tq_cache_config cfg = preset_config(nullptr);
  cfg.k_codec = "turbo3";
  cfg.v_codec = "q8_0";
  ASSERT_EQ(tq_cache_create(&cfg, &cache), TQ_OK) << tq_last_error();
  const std::string path = temp_path("plain");
  std::filesystem::remove(path);
  ASSERT_EQ(tq_cache_save(cache, path.c_str(), 0), TQ_OK);
  tq_cache* loaded = nullptr;
  ASSERT_EQ(tq_cache_load_profile(path.c_str(), nullptr, 1, &loaded), TQ_OK) << tq_last_error();
  tq_cache_config got{};
  ASSERT_EQ(tq_cache_get_config(loaded, &got), TQ_OK);
  EXPECT_STREQ(got.v_codec, "q8_0");
  EXPECT_EQ(got.context, 0);
  tq_cache_destroy(loaded);
  std::filesystem::remove(path);
}

}  // namespace
