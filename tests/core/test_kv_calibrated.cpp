// build_calibrated for every preset on random profiles (d = 16 and 64, with and without
// measured sensitivities). The budget is shared over layers and sides: everything counted
// (records + the sink share 32·sinks/context) stays within budget_bits, the total record
// bytes within floor((budget − sink share)·d/8 · 2·layers); each side gets whole bytes: at
// most one above its equal share, or up to 2·share + 1 when sensitivities move bytes.
// Layouts cover d, maps invert (|P·P⁻¹ − I| <= 1e-4 entrywise), and a larger budget never
// predicts more error (per side with equal shares; the weighted objective Σ η·predicted
// with sensitivities).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "calib_test_util.h"
#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/kv_profile.h"
#include "turboquant/quantizers.h"

namespace tq {
namespace {

struct Shape {
  int layers, heads, kv_heads, dim;
  bool measured;  // profile carries K/V sensitivities
};

class BuildCalibrated : public ::testing::TestWithParam<Shape> {};

TEST_P(BuildCalibrated, EveryPresetFitsItsBudget) {
  const Shape s = GetParam();
  KvProfile prof = test::random_profile(31 + s.dim, s.layers, s.heads, s.kv_heads, s.dim);
  if (s.measured) {
    Rng rng(8);
    for (int l = 0; l < s.layers; ++l) {
      prof.k_sensitivity.push_back(0.2 + 3 * rng.uniform());
      prof.v_sensitivity.push_back(0.2 + 3 * rng.uniform());
    }
  }
  const CalibrationOptions opt;  // context 2048, default sinks
  const int sinks = std::min(opt.sink_tokens, opt.context);
  std::vector<const CodecSpec*> presets;
  for (const CodecSpec& p : preset_table()) presets.push_back(&p);
  ASSERT_GE(presets.size(), 2u);
  std::sort(presets.begin(), presets.end(), [](auto* a, auto* b) { return a->budget_bits < b->budget_bits; });
  std::vector<CalibratedCodecs> built;
  for (const CodecSpec* preset : presets) {
    SCOPED_TRACE(std::string(preset->name) + " d=" + std::to_string(s.dim) + (s.measured ? " measured" : " equal"));
    const CalibratedCodecs cc = build_calibrated(prof, *preset, opt);
    EXPECT_EQ(cc.preset, preset);
    EXPECT_EQ(cc.sink_tokens, sinks);
    const double sink_bits = 32.0 * sinks / opt.context;
    const double record_bits = preset->budget_bits - sink_bits;
    const long long total_cap = static_cast<long long>(std::floor(record_bits * s.dim / 8.0 * 2 * s.layers));
    const long long share = total_cap / (2 * s.layers);
    const long long side_cap = s.measured ? 2 * share + 1 : share + (total_cap % (2 * s.layers) ? 1 : 0);
    ASSERT_EQ(cc.keys.size(), static_cast<size_t>(s.layers));
    ASSERT_EQ(cc.values.size(), static_cast<size_t>(s.layers));
    size_t bytes = 0;
    long long record_total = 0;
    for (int l = 0; l < s.layers; ++l)
      for (const CalibratedSide* side : {&cc.keys[l], &cc.values[l]}) {
        int covered = 0;
        for (const QuantGroup& g : side->groups) {
          covered += g.size;
          EXPECT_EQ(g.size % opt.granule, 0);
          EXPECT_GE(g.bits, opt.min_bits);
          EXPECT_LE(g.bits, 8);
        }
        EXPECT_EQ(covered, s.dim);
        const size_t lb = GroupedMseQuantizer::layout_bytes(side->groups);
        EXPECT_LE(static_cast<long long>(lb), side_cap) << "layer " << l;
        record_total += static_cast<long long>(lb);
        EXPECT_GE(side->predicted, 0.0);
        EXPECT_LE(side->predicted, 1.0);
        ASSERT_EQ(side->maps.size(), static_cast<size_t>(s.kv_heads));
        for (const auto& m : side->maps) {
          ASSERT_EQ(m->dim, s.dim);
          EXPECT_LT(test::map_identity_error(*m), 1e-4) << "layer " << l;
          const Codec c = Codec::make_calibrated(*preset, m, side->groups);
          EXPECT_EQ(c.record_bytes(), lb);
        }
        bytes += static_cast<size_t>(s.kv_heads) * lb;
      }
    EXPECT_LE(record_total, total_cap);
    EXPECT_EQ(cc.bytes_per_token, bytes);
    EXPECT_LE(cc.bits_per_value(), record_bits + 1e-12);
    EXPECT_LE(cc.bits_per_value() + sink_bits, preset->budget_bits + 1e-12) << "everything counted";
    EXPECT_GT(cc.bits_per_value(), 0.0);
    built.push_back(cc);
  }
  auto objective = [&](const CalibratedCodecs& cc) {
    double o = 0;
    for (int l = 0; l < s.layers; ++l) o += prof.k_sensitivity[l] * cc.keys[l].predicted + prof.v_sensitivity[l] * cc.values[l].predicted;
    return o;
  };
  for (size_t i = 1; i < built.size(); ++i) {
    if (s.measured) {
      EXPECT_LE(objective(built[i]), objective(built[i - 1]) + 1e-12) << presets[i]->name << " vs " << presets[i - 1]->name;
      continue;
    }
    for (int l = 0; l < s.layers; ++l) {
      EXPECT_LE(built[i].keys[l].predicted, built[i - 1].keys[l].predicted + 1e-12)
          << presets[i]->name << " vs " << presets[i - 1]->name << " K layer " << l;
      EXPECT_LE(built[i].values[l].predicted, built[i - 1].values[l].predicted + 1e-12)
          << presets[i]->name << " vs " << presets[i - 1]->name << " V layer " << l;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, BuildCalibrated,
                         ::testing::Values(Shape{2, 4, 2, 16, false}, Shape{1, 4, 2, 64, false}, Shape{3, 4, 2, 16, true},
                                           Shape{2, 4, 2, 64, true}),
                         [](const auto& info) {
                           return "d" + std::to_string(info.param.dim) + "_L" + std::to_string(info.param.layers) +
                                  (info.param.measured ? "_measured" : "_equal");
                         });

TEST(BuildCalibratedOptions, SinkShareAndErrors) {
  const KvProfile prof = test::random_profile(5, 2, 4, 2, 16);
  const CodecSpec& tq3 = *find_preset("tq3");
  // A short context with many sinks takes bits from the records: 32 sinks over 1024
  // positions cost 32·32/1024 = 1 bit/value, leaving tq3 2 bits/value (4 bytes at d = 16).
  CalibrationOptions opt;
  opt.context = 1024;
  opt.sink_tokens = 0;
  const CalibratedCodecs none = build_calibrated(prof, tq3, opt);
  opt.sink_tokens = 32;
  const CalibratedCodecs many = build_calibrated(prof, tq3, opt);
  EXPECT_EQ(none.sink_tokens, 0);
  EXPECT_EQ(many.sink_tokens, 32);
  EXPECT_LT(many.bytes_per_token, none.bytes_per_token);
  for (int l = 0; l < 2; ++l)
    for (const CalibratedSide* side : {&many.keys[l], &many.values[l]})
      EXPECT_LE(8.0 * GroupedMseQuantizer::layout_bytes(side->groups) / 16, 2.0 + 1e-12);
  // Sinks filling the whole context cost 32 bits/value: no preset fits.
  opt.context = 2;
  opt.sink_tokens = 4;
  EXPECT_THROW(build_calibrated(prof, *find_preset("tq4"), opt), Error);
  EXPECT_THROW(build_calibrated(prof, *find_codec("turbo3")), Error);
  CalibrationOptions bad;
  bad.granule = 5;
  EXPECT_THROW(build_calibrated(prof, tq3, bad), Error);
  bad = {};
  bad.context = 0;
  EXPECT_THROW(build_calibrated(prof, tq3, bad), Error);
  KvProfile broken = prof;
  broken.rope_partner[0] = 3;
  EXPECT_THROW(build_calibrated(broken, tq3), Error);
}

// A budget that cannot hold even min_bits everywhere (64 sinks over 1024 positions leave
// tq3 1 bit/value = 2 bytes at d = 16, the smallest layout takes 2 + 2) must be reported
// as a tq::Error, not returned as a layout that does not cover head_dim.
TEST(BuildCalibratedOptions, InfeasibleBudgetIsAnErrorNotABadLayout) {
  const KvProfile prof = test::random_profile(5, 1, 4, 2, 16);
  CalibrationOptions opt;
  opt.context = 1024;
  opt.sink_tokens = 64;
  try {
    const CalibratedCodecs cc = build_calibrated(prof, *find_preset("tq3"), opt);
    for (const CalibratedSide* side : {&cc.keys[0], &cc.values[0]}) {
      int covered = 0;
      for (const QuantGroup& g : side->groups) covered += g.size;
      EXPECT_EQ(covered, 16) << "groups of an infeasible budget";
      EXPECT_NO_THROW(Codec::make_calibrated(*find_preset("tq3"), side->maps[0], side->groups));
    }
  } catch (const Error&) {
    SUCCEED();
  }
}

// With measured sensitivities the allocation first gives every side its smallest layout;
// when min_bits makes even that larger than the table (8 bits everywhere at d = 16 is
// 18 bytes, tq3 has 2·6 + 1), it searched past the table for ever. Now the equal shares
// are kept and the infeasible budget is the clear error above.
TEST(BuildCalibratedOptions, InfeasibleMinBitsWithSensitivitiesIsAnErrorNotAHang) {
  KvProfile prof = test::random_profile(5, 2, 4, 2, 16);
  prof.k_sensitivity = {1.0, 2.0};
  prof.v_sensitivity = {0.5, 1.0};
  CalibrationOptions opt;
  opt.min_bits = 8;
  EXPECT_THROW(build_calibrated(prof, *find_preset("tq3"), opt), Error);
}

// Consistent but enormous statistics (every second moment times 1e150: the whitened key
// covariance T C T reaches 1e300, its squares overflow double) give a tq::Error, not
// NaN spectra and layouts.
TEST(BuildCalibratedOptions, OverflowingStatisticsAreAnError) {
  const KvProfile prof = test::random_profile(5, 1, 2, 1, 16);
  KvProfile huge = prof;
  for (auto& h : huge.heads)
    for (auto* m : {&h.qq, &h.kk, &h.vv, &h.v_weight})
      for (double& x : *m) x *= 1e150;
  try {
    build_calibrated(huge, *find_preset("tq3"));
    ADD_FAILURE() << "statistics of 1e150 were calibrated";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
  }
}

// A budget the sink store eats entirely (tq3 at a context of 9 tokens: 32/9 bits per value
// for one sink; `tq run --codec tq3` with a short prompt and --n) is refused with the sink
// share and the context in the message, with measured sensitivities as without.
TEST(BuildCalibratedOptions, BudgetTheSinksEatIsAnErrorNamingTheContext) {
  KvProfile prof = test::random_profile(5, 2, 4, 2, 64);
  prof.k_sensitivity = {1.0, 2.0};
  prof.v_sensitivity = {0.5, 1.5};
  CalibrationOptions opt;
  opt.context = 9;
  for (bool measured : {true, false}) {
    if (!measured) {
      prof.k_sensitivity.clear();
      prof.v_sensitivity.clear();
    }
    try {
      (void)build_calibrated(prof, *find_preset("tq3"), opt);
      ADD_FAILURE() << "built codecs with no bytes for the records";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("at a context of 9 tokens"), std::string::npos) << e.what();
    }
  }
}

TEST(BuildCalibratedOptions, DeterministicForASeed) {
  const KvProfile prof = test::random_profile(6, 1, 4, 2, 16);
  const CodecSpec& tq4 = *find_preset("tq4");
  const CalibratedCodecs a = build_calibrated(prof, tq4), b = build_calibrated(prof, tq4);
  ASSERT_EQ(a.keys[0].maps.size(), b.keys[0].maps.size());
  EXPECT_EQ(a.keys[0].maps[1]->matrix, b.keys[0].maps[1]->matrix);
  EXPECT_EQ(a.values[0].maps[0]->inverse, b.values[0].maps[0]->inverse);
  EXPECT_EQ(a.keys[0].predicted, b.keys[0].predicted);
}

}  // namespace
}  // namespace tq
