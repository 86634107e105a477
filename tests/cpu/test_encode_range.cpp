// Range safety of every encoder (docs/FORMATS.md, "Range"): the reference Codec::encode
// and every quantize-on-write level compiled here (avx512, avx2, portable), for every codec
// of the table and a calibrated (grouped) codec, on inputs scaled to 1e5 and 1e30 (fp16
// fields overflow), 1e-40 (float subnormals: 1/‖x‖ overflows float) and zero.
//   - Every decoded value is finite; tiny and zero vectors decode to exact zeros.
//   - A vector counts as saturated exactly when one of its record's fp16 fields reaches
//     65520 before rounding (largest_field below, from the definitions in FORMATS.md):
//     every vector at 1e30, none at 1e-40 or 0.
//   - The lane encoders write the reference's records (up to the near-ties of
//     encode_test_util.h) and count the same vectors.
// NaN and ±Inf are refused by Codec::encode and counted as non-finite.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "attention_test_util.h"
#include "encode.h"
#include "encode_test_util.h"
#include "turboquant/error.h"
#include "turboquant/half.h"
#include "turboquant/packing.h"
#include "turboquant/quantizers.h"
#include "turboquant/range.h"

namespace tq {
namespace {

constexpr const char* kCalibrated = "tq3";  // stands for every preset: they share the quantizer

// The calibrated quantizer behind an identity map (zero stays zero): four runs of widths
// 4, 3, 2 and 0 bits.
Codec grouped_codec(int dim) {
  const int q = dim / 4;
  return Codec::make_calibrated(*find_preset(kCalibrated), identity_affine_map(dim), {{q, 4}, {q, 3}, {q, 2}, {q, 0}});
}

Codec make_codec(const std::string& name, int dim) {
  return name == kCalibrated ? grouped_codec(dim) : Codec::make(name, dim, 77);
}

// Bounds on the largest fp16 field of x's record before rounding, in double. Corrected
// norms (‖y‖/‖c[idx]‖) are bounded by ‖y‖/2 and 2‖y‖ (‖c[idx]‖ of a unit vector's codes
// lies well inside [1/2, 2]); every other field is computed exactly.
struct FieldRange {
  double lo = 0, hi = 0;
  void add(double v, double spread = 1) {
    lo = std::max(lo, std::fabs(v) / spread);
    hi = std::max(hi, std::fabs(v) * spread);
  }
};

double norm_of(const float* y, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += double(y[i]) * y[i];
  return std::sqrt(s);
}

FieldRange largest_field(const Codec& c, const float* x) {
  const int D = c.code_dim();
  std::vector<float> y(D);
  c.to_code(x, y.data());
  FieldRange r;
  switch (c.spec().quant) {
    case QuantKind::f16:
      for (float v : y) r.add(v);
      break;
    case QuantKind::q8_0:
    case QuantKind::q4_0:
      for (int b = 0; b < D / 32; ++b) {
        double amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(double(y[32 * b + j])));
        r.add(c.spec().quant == QuantKind::q8_0 ? amax / 127 : amax / 8);
      }
      break;
    case QuantKind::fp8: {  // saturates (and counts) when max|y|/448 > 65504
      double amax = 0;
      for (float v : y) amax = std::max(amax, std::fabs(double(v)));
      r.add(amax / 448);
      break;
    }
    case QuantKind::mse: r.add(norm_of(y.data(), D), c.spec().corrected_norm ? 2 : 1); break;
    case QuantKind::prod: r.add(norm_of(y.data(), D)); break;  // γ = ‖u − c[idx]‖ <= 2
    case QuantKind::group: {
      const int g = c.spec().group, top = (1 << c.spec().bits) - 1;
      for (int k = 0; k < D / g; ++k) {
        const auto [lo, hi] = std::minmax_element(y.begin() + g * k, y.begin() + g * (k + 1));
        const double mn = std::clamp(double(*lo), -double(kHalfMax), double(kHalfMax));  // the stored min
        r.add(*lo);
        r.add((*hi - mn) / top);
      }
      break;
    }
    case QuantKind::grouped: {
      int begin = 0;
      for (const QuantGroup& g : static_cast<const GroupedMseQuantizer&>(c.quantizer()).groups()) {
        if (g.bits > 0) r.add(norm_of(y.data() + begin, g.size), 2);
        begin += g.size;
      }
      break;
    }
  }
  return r;
}

// 1 / 0 when the record of x must / must not saturate, -1 within 0.1% of the threshold.
int expected_saturation(const Codec& c, const float* x) {
  const FieldRange r = largest_field(c, x);
  if (r.lo >= kHalfOverflow * 1.001) return 1;
  if (r.hi < kHalfOverflow * 0.999) return 0;
  return -1;
}

std::vector<float> scaled_gaussians(Rng& rng, int n, int dim, float scale) {
  std::vector<float> x(static_cast<size_t>(n) * dim);
  for (float& v : x) v = static_cast<float>(rng.gaussian()) * scale;
  return x;
}

uint64_t saturated_now() { return range_events().saturated; }

struct Scale {
  const char* name;
  float value;
};
constexpr Scale kScales[] = {{"1e5", 1e5f}, {"1e30", 1e30f}, {"1e-40", 1e-40f}, {"zero", 0.f}};

using Param = test::CodecDim;
class EncodeRange : public ::testing::TestWithParam<Param> {};

TEST_P(EncodeRange, EveryScaleOnEveryLevel) {
  const auto& [name, dim] = GetParam();
  const Codec c = make_codec(name, dim);
  const size_t rec = c.record_bytes();
  Rng rng(test::fresh_seed());
  const int n = 19;  // a full batch of 16 lanes plus a partial one; 8 + 8 + 3 for 8 lanes
  for (const Scale& s : kScales) {
    SCOPED_TRACE(name + " d=" + std::to_string(dim) + " scale " + s.name);
    const bool tiny = std::fabs(s.value) < 1e-30f;
    if (tiny && s.value != 0.f) {
      ASSERT_LT(s.value, std::numeric_limits<float>::min()) << "not a float subnormal";
    }
    const auto x = scaled_gaussians(rng, n, dim, s.value);

    // Reference: one vector at a time, so each count belongs to one record.
    std::vector<uint8_t> ref(rec * n);
    std::vector<float> out(dim);
    uint64_t ref_saturated = 0;
    for (int t = 0; t < n; ++t) {
      const float* v = x.data() + static_cast<size_t>(t) * dim;
      const uint64_t before = saturated_now();
      c.encode(v, ref.data() + rec * t);
      const uint64_t counted = saturated_now() - before;
      ref_saturated += counted;
      const int want = expected_saturation(c, v);
      if (want >= 0) {
        EXPECT_EQ(counted, static_cast<uint64_t>(want)) << "vector " << t;
      }
      c.decode(ref.data() + rec * t, out.data());
      for (int i = 0; i < dim; ++i) {
        ASSERT_TRUE(std::isfinite(out[i])) << "vector " << t << " coordinate " << i << " decodes to " << out[i];
        if (tiny) {
          ASSERT_EQ(out[i], 0.f) << "vector " << t << " coordinate " << i;
        }
      }
    }
    if (s.value >= 1e30f) {
      EXPECT_EQ(ref_saturated, static_cast<uint64_t>(n)) << "every vector at 1e30 saturates";
    }
    if (tiny) {
      EXPECT_EQ(ref_saturated, 0u);
    }

    for (AttendPath path : {AttendPath::avx512, AttendPath::avx2, AttendPath::portable}) {
      const auto enc = detail::make_record_encoder(c, path);
      std::vector<uint8_t> fast(rec * n);
      const uint64_t before = saturated_now();
      enc->encode(x.data(), dim, n, fast.data(), rec);
      EXPECT_EQ(saturated_now() - before, ref_saturated) << test::path_name(path) << " counts other vectors";
      test::expect_matches(c, x.data(), dim, n, fast.data(), rec, test::path_name(path));
    }
  }
}

std::vector<Param> codecs_and_calibrated() {
  std::vector<Param> p = test::all_codecs_and_dims();
  for (int d : {64, 128, 256}) p.emplace_back(kCalibrated, d);
  return p;
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, EncodeRange, ::testing::ValuesIn(codecs_and_calibrated()), test::codec_dim_name);

TEST(EncodeRange, NonFiniteInputIsRefusedAndCounted) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (const Param& p : codecs_and_calibrated()) {
    const Codec c = make_codec(std::get<0>(p), std::get<1>(p));
    std::vector<uint8_t> record(c.record_bytes());
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), kInf, -kInf}) {
      std::vector<float> x(c.dim(), 0.5f);
      x[5] = bad;
      const RangeEvents before = range_events();
      try {
        c.encode(x.data(), record.data());
        ADD_FAILURE() << c.name() << ": " << bad << " was encoded";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("coordinate 5 is not finite"), std::string::npos) << e.what();
      }
      EXPECT_EQ(range_events().nonfinite - before.nonfinite, 1u) << c.name();
      EXPECT_EQ(range_events().saturated, before.saturated) << c.name();
    }
  }
}

}  // namespace
}  // namespace tq
