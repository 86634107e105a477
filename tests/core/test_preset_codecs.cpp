// attach_preset_codecs: the preset may be named by K, V or a layer override; two presets
// in one cache or a preset without a profile are errors naming what was wrong; a memo
// builds each (preset, options) once and the codecs it hands back are the unmemoized ones.
#include <gtest/gtest.h>

#include <string>

#include "calib_test_util.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"

namespace tq {
namespace {

KvCacheConfig config(const std::string& k, const std::string& v) {
  KvCacheConfig c;
  c.n_layers = 2;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.max_tokens = 64;
  c.k_codec = k;
  c.v_codec = v;
  return c;
}

std::string error_of(KvCacheConfig c, const KvProfile* p) {
  try {
    attach_preset_codecs(c, p, {}, "pass a profile");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PresetCodecs, ThePresetMayBeNamedByALayerOverride) {
  const KvProfile prof = test::random_profile(5, 2, 4, 2, 16);
  KvCacheConfig c = config("f16", "f16");
  attach_preset_codecs(c, &prof, {}, "");
  EXPECT_EQ(c.calibrated, nullptr);  // no preset: left as it was
  c.layer_codecs[1] = {"tq3", "tq3"};
  attach_preset_codecs(c, &prof, {}, "");
  ASSERT_NE(c.calibrated, nullptr);
  EXPECT_EQ(c.calibrated->preset, find_preset("tq3"));
  EXPECT_EQ(c.sink_tokens, c.calibrated->sink_tokens);
  KvCache cache(c);  // the plan finds the codecs it needs
  EXPECT_EQ(cache.k_codec(1, 0).spec().name, std::string("tq3"));
}

TEST(PresetCodecs, TwoPresetsOrNoProfileAreErrorsNamingThem) {
  const KvProfile prof = test::random_profile(5, 2, 4, 2, 16);
  EXPECT_NE(error_of(config("tq3", "tq4"), &prof).find("k_codec 'tq3' and v_codec 'tq4'"), std::string::npos);
  KvCacheConfig c = config("tq3", "f16");
  c.layer_codecs[1] = {"f16", "tq4"};
  EXPECT_NE(error_of(c, &prof).find("k_codec 'tq3' and layer 1 V 'tq4'"), std::string::npos);
  const std::string none = error_of(config("f16", "tq3"), nullptr);
  EXPECT_NE(none.find("'tq3' is a calibrated preset"), std::string::npos) << none;
  EXPECT_NE(none.find("pass a profile"), std::string::npos) << none;
}

TEST(PresetCodecs, AMemoBuildsEachPresetAndOptionsOnce) {
  const KvProfile prof = test::random_profile(5, 2, 4, 2, 16);
  PresetCodecsMemo memo;
  CalibrationOptions short_cache;
  short_cache.context = 64;
  KvCacheConfig a = config("tq3", "tq3"), b = a, longer = a, plain = a;
  attach_preset_codecs(a, &prof, short_cache, "", &memo);
  attach_preset_codecs(b, &prof, short_cache, "", &memo);
  EXPECT_EQ(a.calibrated, b.calibrated);  // the same object: built once
  attach_preset_codecs(longer, &prof, {}, "", &memo);
  EXPECT_NE(longer.calibrated, a.calibrated);
  EXPECT_NE(longer.calibrated->source.options.context, a.calibrated->source.options.context);
  attach_preset_codecs(plain, &prof, short_cache, "");
  EXPECT_EQ(plain.calibrated->source, a.calibrated->source);
  ASSERT_EQ(plain.calibrated->keys.size(), a.calibrated->keys.size());
  EXPECT_EQ(plain.calibrated->keys[0].maps[0]->matrix, a.calibrated->keys[0].maps[0]->matrix);
}

}  // namespace
}  // namespace tq
