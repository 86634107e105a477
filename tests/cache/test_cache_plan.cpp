// KvCachePlan: the seed rule, per-layer overrides, record layout, the errors naming layer and
// side, and KvCache building from a plan (same codecs, attention kernels built once).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../../src/cpu/kernels.h"
#include "core/calib_test_util.h"
#include "turboquant/attention.h"
#include "turboquant/cache_plan.h"
#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/quant_traits.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

// 3 layers, the last overridden; 60 tokens in blocks of 8.
KvCacheConfig plan_config() {
  return {.n_layers = 3, .n_kv_heads = 2, .head_dim = 64, .k_codec = "turbo3", .v_codec = "v3g32",
          .layer_codecs = {{2, {"q8_0", "f16"}}}, .block_tokens = 8, .max_tokens = 60, .seed = 11};
}

std::string error_of(const KvCacheConfig& c, std::string_view who = "KvCache") {
  try {
    KvCachePlan plan(c, who);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(KvCachePlan, ResolvesCodecsSeedsAndLayout) {
  const KvCacheConfig c = plan_config();
  const KvCachePlan plan(c);
  EXPECT_EQ(plan.num_blocks(), 8);  // 60 tokens in blocks of 8, rounded up
  for (int l = 0; l < c.n_layers; ++l)
    for (bool value : {false, true}) {
      const CacheSidePlan& s = plan.side(l, value);
      const std::string want = l == 2 ? (value ? "f16" : "q8_0") : (value ? "v3g32" : "turbo3");
      EXPECT_EQ(s.codec, want);
      EXPECT_FALSE(s.calibrated);
      ASSERT_EQ(s.codecs.size(), 2u);
      for (int h = 0; h < c.n_kv_heads; ++h) {
        const uint64_t seed = derive_seed(c.seed, static_cast<uint64_t>(l) * 65536u + h * 2u + (value ? 1u : 0u));
        EXPECT_EQ(s.seeds[h], seed);
        EXPECT_EQ(cache_codec_seed(c.seed, l, h, value), seed);
        EXPECT_EQ(s.codecs[h].seed(), seed);
        EXPECT_EQ(s.codecs[h].name(), want);
      }
      const size_t rec = Codec::make(want, c.head_dim).record_bytes();
      EXPECT_EQ(s.record_bytes, rec);
      EXPECT_EQ(s.block_bytes, rec * c.block_tokens * c.n_kv_heads);
      EXPECT_EQ(s.cpu_simd, quant_traits(s.codecs[0].spec().quant).cpu_simd_scorer && attend_has_simd());
    }
  // The two heads of a side differ only by seed, so their rotations (and records) differ.
  Rng rng(3);
  std::vector<float> x(c.head_dim);
  for (float& e : x) e = static_cast<float>(rng.gaussian());
  const CacheSidePlan& k0 = plan.side(0, false);
  std::vector<uint8_t> r0(k0.record_bytes), r1(k0.record_bytes);
  k0.codecs[0].encode(x.data(), r0.data());
  k0.codecs[1].encode(x.data(), r1.data());
  EXPECT_NE(r0, r1);
}

TEST(KvCachePlan, NamesLayerSideAndCacheInErrors) {
  KvCacheConfig c = plan_config();
  c.layer_codecs[1] = {"turbo3", "nosuch"};
  const std::string e = error_of(c, "DeviceKvCache");
  EXPECT_NE(e.find("DeviceKvCache: layer 1 V: unknown codec 'nosuch'"), std::string::npos) << e;

  c = plan_config();
  c.k_codec = "tq3";  // a calibrated preset, and no calibrated codecs given
  const std::string cal = error_of(c);
  EXPECT_NE(cal.find("KvCache: layer 0 K: codec 'tq3' is a calibrated preset"), std::string::npos) << cal;

  c = plan_config();
  c.layer_codecs[7] = {"f16", "f16"};
  EXPECT_NE(error_of(c).find("layer_codecs names layer 7"), std::string::npos);
  c = plan_config();
  c.n_kv_heads = 0;
  EXPECT_NE(error_of(c).find("KvCache: n_kv_heads must be > 0"), std::string::npos);

  const KvCachePlan plan(plan_config());
  EXPECT_THROW(plan.layer(3), Error);
  EXPECT_THROW(plan.codec(0, 2, false), Error);
}

TEST(KvCachePlan, KvCacheBuildsFromThePlanAndKeepsItsKernels) {
  const KvCachePlan plan(plan_config());
  const KvCache cache(plan);
  const KvCache by_config(plan_config());
  EXPECT_EQ(cache.bytes_per_token(), plan.bytes_per_token());
  EXPECT_EQ(by_config.bytes_per_token(), plan.bytes_per_token());
  for (int l = 0; l < 3; ++l) {
    EXPECT_EQ(cache.k_record_bytes(l), plan.side(l, false).record_bytes);
    EXPECT_EQ(cache.v_block_bytes(l), plan.side(l, true).block_bytes);
    for (int h = 0; h < 2; ++h) EXPECT_EQ(cache.k_codec(l, h).seed(), plan.side(l, false).seeds[h]);
    // Built once per cache and path: every call hands back the same kernels.
    const detail::LayerKernels& a = cache.attend_kernels(l, AttendPath::best);
    EXPECT_EQ(&a, &cache.attend_kernels(l, AttendPath::best));
    ASSERT_EQ(a.k.size(), 2u);
    EXPECT_GT(a.rows_per_tile, 0);
    EXPECT_NE(&a, &cache.attend_kernels(l, AttendPath::portable));
  }
  EXPECT_THROW(cache.attend_kernels(3, AttendPath::best), Error);
  // The byte counts every cache reports come from the plan: a block of each layer, and the
  // f32 sink rows of one sequence (none here; two positions below).
  size_t block = 0;
  for (int l = 0; l < 3; ++l) block += cache.k_block_bytes(l) + cache.v_block_bytes(l);
  EXPECT_EQ(plan.bytes_per_block(), block);
  EXPECT_EQ(plan.sink_bytes(), 0u);
  KvCacheConfig sinks = plan_config();
  sinks.sink_tokens = 2;
  EXPECT_EQ(KvCachePlan(sinks).sink_bytes(), sizeof(float) * 2 * 3 * 2 * (2 * sinks.head_dim));
  EXPECT_EQ(KvCache(sinks).sink_bytes(), KvCachePlan(sinks).sink_bytes());
}

// A calibrated tq3 in RoPE frames of 40 positions, 100 tokens of capacity: the plan's turn
// of every frame the capacity reaches (0, 1, 2) is RopeFrames::turn_back at the frame's
// start, float for float; a frame past it, or a layer without frames, is an error.
TEST(KvCachePlan, KeyTurnsAreTheFramesTurnsUpToTheCapacity) {
  const KvProfile prof = test::random_profile(23, 2, 4, 2, 64);
  CalibrationOptions opt;
  opt.rope_range = 40;
  KvCacheConfig c{.n_layers = 2, .n_kv_heads = 2, .head_dim = 64, .k_codec = "tq3", .v_codec = "tq3",
                  .layer_codecs = {{1, {"q8_0", "tq3"}}}, .block_tokens = 8, .max_tokens = 100};
  c.calibrated = std::make_shared<const CalibratedCodecs>(build_calibrated(prof, *find_preset("tq3"), opt));
  const KvCachePlan plan(c);
  const RopeFrames* frames = plan.key_frames(0);
  ASSERT_NE(frames, nullptr);
  ASSERT_EQ(frames->range(), 40);
  for (int f = 0; f < 3; ++f) {
    const RopeFrames::Turn want = frames->turn_back(0, frames->frame_start(f));
    const RopeFrames::Turn& got = plan.key_turn(0, f);
    EXPECT_EQ(got.identity(), f == 0);
    EXPECT_EQ(got.cos(), want.cos());
    EXPECT_EQ(got.sin(), want.sin());
  }
  EXPECT_THROW(plan.key_turn(0, 3), Error);   // positions 120..159 are past the pool (13 blocks of 8)
  EXPECT_THROW(plan.key_turn(0, -1), Error);
  EXPECT_EQ(plan.key_frames(1), nullptr);     // layer 1's keys are q8_0
  EXPECT_THROW(plan.key_turn(1, 0), Error);
  EXPECT_THROW(plan.key_turn(2, 0), Error);
}

// The calibrated codecs name their preset by a pointer into the preset table of the code that
// built them; a module with its own copy of the table (the CUDA runner) must accept them. So
// the plan matches presets by name: a copy of tq3's spec passes, another preset does not.
TEST(KvCachePlan, CalibratedCodecsMatchTheirPresetByName) {
  const KvProfile prof = test::random_profile(29, 2, 2, 2, 64);
  KvCacheConfig c{.n_layers = 2, .n_kv_heads = 2, .head_dim = 64, .k_codec = "tq3", .v_codec = "tq3",
                  .block_tokens = 8, .max_tokens = 64};
  CalibratedCodecs built = build_calibrated(prof, *find_preset("tq3"), CalibrationOptions{});
  const CodecSpec copy = *find_preset("tq3");
  built.preset = &copy;
  c.calibrated = std::make_shared<const CalibratedCodecs>(built);
  const KvCachePlan plan(c);
  EXPECT_TRUE(plan.side(0, false).calibrated);
  EXPECT_EQ(plan.side(1, true).codec, "tq3");

  c.k_codec = c.v_codec = "tq4";
  try {
    const KvCachePlan other(c);
    FAIL() << "tq4 accepted tq3's calibrated codecs";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("codec 'tq4' is a calibrated preset: the cache needs its calibrated codecs "
                                         "(it holds tq3's)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tq
