// The fp8 codec's reference: OCP E4M3 conversion (fp8.h) and the record of Fp8Quantizer.
// The conversion is checked code by code and against a nearest-value search; the record
// for its layout, its exact round trip, the scale rule and the range rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "turboquant/blocks.h"
#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/fp8.h"
#include "turboquant/half.h"
#include "turboquant/quantizers.h"
#include "turboquant/range.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

bool is_nan_code(int c) { return (c & 0x7f) == 0x7f; }

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(E4M3, EveryCodeRoundTripsAndNanCodesAreNan) {
  for (int c = 0; c < 256; ++c) {
    const float v = e4m3_to_float(static_cast<uint8_t>(c));
    if (is_nan_code(c)) {
      EXPECT_TRUE(std::isnan(v)) << c;
      continue;
    }
    EXPECT_EQ(float_to_e4m3(v), c) << "code " << c << " value " << v;
    EXPECT_EQ(std::signbit(v), c >= 0x80) << c;
  }
  EXPECT_EQ(float_to_e4m3(std::nanf("")), kE4M3NaN);
  EXPECT_EQ(float_to_e4m3(-std::nanf("")), kE4M3NaN);
}

TEST(E4M3, ValuesFollowTheFormat) {
  EXPECT_EQ(e4m3_to_float(0x00), 0.f);
  EXPECT_EQ(e4m3_to_float(0x01), std::ldexp(1.f, -9));  // smallest subnormal
  EXPECT_EQ(e4m3_to_float(0x07), 7 * std::ldexp(1.f, -9));
  EXPECT_EQ(e4m3_to_float(0x08), std::ldexp(1.f, -6));  // smallest normal
  EXPECT_EQ(e4m3_to_float(0x38), 1.f);                  // e = 7 (the bias), m = 0
  EXPECT_EQ(e4m3_to_float(0x3c), 1.5f);
  EXPECT_EQ(e4m3_to_float(0x7e), 448.f);
  EXPECT_EQ(e4m3_to_float(0xfe), -448.f);
  EXPECT_EQ(e4m3_to_float(0x77), 240.f);  // the format has no infinity: 0x77..0x7e are finite
  // Positive codes 0..0x7e are strictly increasing: the code order is the value order.
  for (int c = 1; c <= 0x7e; ++c) EXPECT_LT(e4m3_to_float(c - 1), e4m3_to_float(c)) << c;
}

TEST(E4M3, TiesRoundToTheEvenCode) {
  for (int c = 0; c < 0x7e; ++c)
    for (float sign : {1.f, -1.f}) {
      const uint8_t s = sign > 0 ? 0 : 0x80;
      const float lo = e4m3_to_float(c), hi = e4m3_to_float(c + 1);
      const float mid = sign * (lo + (hi - lo) / 2);  // exact: 4 significant bits
      ASSERT_EQ(std::fabs(mid) - lo, hi - std::fabs(mid));
      const int even = (c % 2 == 0) ? c : c + 1;  // a code's last bit is its mantissa's
      EXPECT_EQ(float_to_e4m3(mid), s | even) << "midpoint of codes " << c << ", " << c + 1;
      EXPECT_EQ(float_to_e4m3(std::nextafter(mid, 0.f)), s | c);
      EXPECT_EQ(float_to_e4m3(std::nextafter(mid, sign * INFINITY)), s | (c + 1));
    }
}

TEST(E4M3, SaturatesAt448) {
  for (float x : {448.f, 450.f, 463.99f, 464.f, 464.01f, 480.f, 1e6f, FLT_MAX, INFINITY}) {
    EXPECT_EQ(float_to_e4m3(x), 0x7e) << x;
    EXPECT_EQ(float_to_e4m3(-x), 0xfe) << x;
  }
  EXPECT_EQ(float_to_e4m3(447.f), 0x7e);  // rounds up to 448
  EXPECT_EQ(float_to_e4m3(431.f), 0x7d);  // 416 + 15: nearer 416
}

TEST(E4M3, ZerosAndSubnormalsKeepTheirSign) {
  const float sub = std::ldexp(1.f, -9);
  EXPECT_EQ(float_to_e4m3(0.f), 0x00);
  EXPECT_EQ(float_to_e4m3(-0.f), 0x80);
  EXPECT_EQ(float_to_e4m3(sub / 2), 0x00);  // a tie between 0 and the smallest: to 0
  EXPECT_EQ(float_to_e4m3(-sub / 2), 0x80);
  EXPECT_EQ(float_to_e4m3(std::nextafter(sub / 2, 1.f)), 0x01);
  EXPECT_EQ(float_to_e4m3(1.5f * sub), 0x02);  // tie between 1 and 2: to 2
  EXPECT_EQ(float_to_e4m3(7.5f * sub), 0x08);  // the last subnormal rounds into the first normal
  EXPECT_EQ(float_to_e4m3(1e-40f), 0x00);       // float subnormals
  EXPECT_EQ(float_to_e4m3(-1e-40f), 0x80);
  EXPECT_EQ(float_to_e4m3(FLT_MIN), 0x00);
}

// float_to_e4m3 against a search for the nearest value (ties to the even code) over a
// sweep of float bit patterns covering every exponent, plus random floats.
TEST(E4M3, MatchesNearestValueSearch) {
  std::vector<float> values;  // positive codes 0..0x7e, increasing
  for (int c = 0; c <= 0x7e; ++c) values.push_back(e4m3_to_float(c));
  auto nearest = [&](float x) {
    const float a = std::fabs(x);
    const int sign = std::signbit(x) ? 0x80 : 0;
    if (a >= 448.f) return sign | 0x7e;
    const int hi = static_cast<int>(std::lower_bound(values.begin(), values.end(), a) - values.begin());
    if (values[hi] == a || hi == 0) return sign | hi;
    const double dl = double(a) - values[hi - 1], dh = double(values[hi]) - a;
    const int c = dl < dh ? hi - 1 : dh < dl ? hi : ((hi - 1) % 2 == 0 ? hi - 1 : hi);
    return sign | c;
  };
  Rng rng(3);
  size_t n = 0;
  for (uint32_t b = 0; b < 0x7f800000u; b += 997) {
    for (uint32_t s : {0u, 0x80000000u}) {
      const float x = from_bits(b | s);
      ASSERT_EQ(float_to_e4m3(x), nearest(x)) << x;
      ++n;
    }
  }
  for (int i = 0; i < 200000; ++i) {
    const float x = static_cast<float>(rng.gaussian() * std::ldexp(1.0, static_cast<int>(rng.next_u64() % 30) - 15));
    ASSERT_EQ(float_to_e4m3(x), nearest(x)) << x;
  }
  EXPECT_GT(n, 4000000u);
}

// ---- the record ---------------------------------------------------------------

TEST(Fp8Codec, RowAndLayout) {
  const CodecSpec* s = find_codec("fp8");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->quant, QuantKind::fp8);
  EXPECT_EQ(quant_name(QuantKind::fp8), "fp8");
  EXPECT_EQ(s->rotation, RotationKind::none);
  for (int d : {64, 128, 256}) {
    const Codec c = Codec::make("fp8", d);
    EXPECT_EQ(c.bits_per_coord(), 8.0 + 16.0 / d);
  }
  EXPECT_EQ(Codec::make("fp8", 64).record_bytes(), sizeof(blocks::Fp8Record<64>));
  EXPECT_EQ(Codec::make("fp8", 128).record_bytes(), sizeof(blocks::Fp8Record<128>));
  EXPECT_EQ(Codec::make("fp8", 256).record_bytes(), sizeof(blocks::Fp8Record<256>));
  EXPECT_EQ(Codec::make("fp8", 40).record_bytes(), 42u);  // any head dimension
}

// A vector of E4M3 values times a power of two whose largest magnitude is 448·2^k: the
// scale is exactly 2^k and the record holds exactly those codes; decode gives x back.
TEST(Fp8Codec, ExactRoundTripOfRepresentableVectors) {
  Rng rng(11);
  for (int d : {64, 128, 256}) {
    const Codec c = Codec::make("fp8", d);
    std::vector<uint8_t> rec(c.record_bytes());
    std::vector<float> x(d), y(d);
    std::vector<uint8_t> codes(d);
    for (int k : {-24, -20, -14, -3, 0, 5, 15}) {
      const float scale = std::ldexp(1.f, k);
      for (int i = 0; i < d; ++i) {
        int code;
        do code = static_cast<int>(rng.next_u64() % 256);
        while (is_nan_code(code));
        codes[i] = static_cast<uint8_t>(code);
      }
      codes[rng.next_u64() % d] = (rng.next_u64() & 1) ? 0x7e : 0xfe;  // amax = 448·scale
      for (int i = 0; i < d; ++i) x[i] = scale * e4m3_to_float(codes[i]);
      c.encode(x.data(), rec.data());
      EXPECT_EQ(load_half(rec.data()), scale) << "2^" << k;
      for (int i = 0; i < d; ++i) ASSERT_EQ(rec[2 + i], codes[i]) << "d=" << d << " 2^" << k << " coordinate " << i;
      c.decode(rec.data(), y.data());
      for (int i = 0; i < d; ++i) ASSERT_EQ(y[i], x[i]) << "d=" << d << " 2^" << k << " coordinate " << i;
    }
  }
}

// The scale is the smallest fp16 at or above max|x|/448, so the largest coordinate never
// saturates; every coordinate is within half an E4M3 step (relative 2^−4, or s·2^−10 in
// the subnormal range) of x, counted from the stored scale.
TEST(Fp8Codec, ScaleIsRoundedUpAndErrorIsHalfAStep) {
  Rng rng(12);
  const int d = 128;
  const Codec c = Codec::make("fp8", d);
  std::vector<uint8_t> rec(c.record_bytes());
  std::vector<float> x(d), y(d);
  reset_range_events();
  for (int t = 0; t < 2000; ++t) {
    const double mag = std::ldexp(1.0, static_cast<int>(rng.next_u64() % 40) - 20);  // 2^-20 .. 2^19
    float amax = 0;
    for (float& v : x) amax = std::max(amax, std::fabs(v = static_cast<float>(rng.gaussian() * mag)));
    c.encode(x.data(), rec.data());
    const uint16_t h = static_cast<uint16_t>(rec[0] | rec[1] << 8);
    const float s = half_to_float(h);
    ASSERT_GE(s, amax / 448.f);
    ASSERT_LT(half_to_float(h - 1), amax / 448.f) << "not the smallest fp16 at or above amax/448";
    c.decode(rec.data(), y.data());
    for (int i = 0; i < d; ++i) {
      ASSERT_NE(rec[2 + i] & 0x7f, 0x7f);
      // (1 + 1e-5: the float products y·(1/s) and s·e4m3 round too.)
      ASSERT_LE(std::fabs(x[i] - y[i]), (std::ldexp(std::fabs(x[i]), -4) + std::ldexp(s, -10)) * 1.00001f)
          << "coordinate " << i << " x " << x[i] << " scale " << s;
    }
  }
  EXPECT_EQ(range_events().saturated, 0u);
}

TEST(Fp8Codec, ScaleBeyondHalfRangeSaturatesAndCounts) {
  const int d = 64;
  const Codec c = Codec::make("fp8", d);
  std::vector<uint8_t> rec(c.record_bytes());
  std::vector<float> x(d, 1.f), y(d);
  reset_range_events();
  x[3] = 448.f * 65504.f;  // exactly representable: the largest vector that fits
  c.encode(x.data(), rec.data());
  EXPECT_EQ(load_half(rec.data()), 65504.f);
  EXPECT_EQ(rec[2 + 3], 0x7e);
  EXPECT_EQ(range_events().saturated, 0u);
  x[3] = -1e9f;
  x[5] = 2e8f;
  x[7] = 1e6f;
  c.encode(x.data(), rec.data());
  EXPECT_EQ(range_events().saturated, 1u);
  EXPECT_EQ(rec[0] | rec[1] << 8, 0x7bff);  // 65504
  c.decode(rec.data(), y.data());
  EXPECT_EQ(y[3], -448.f * 65504.f);  // clipped, finite
  EXPECT_EQ(y[5], 448.f * 65504.f);
  EXPECT_NEAR(y[7], 1e6f, 1e6f / 16);  // the others keep their codes at s = 65504
  EXPECT_EQ(y[0], 0.f);                // 1 is below half the smallest step, 65504·2^-10
  reset_range_events();
}

TEST(Fp8Codec, ZeroAndTinyVectorsDecodeToZero) {
  const int d = 64;
  const Codec c = Codec::make("fp8", d);
  std::vector<uint8_t> rec(c.record_bytes());
  std::vector<float> x(d, 0.f), y(d, 1.f);
  c.encode(x.data(), rec.data());
  EXPECT_EQ(rec[0] | rec[1] << 8, 0);
  c.decode(rec.data(), y.data());
  for (float v : y) EXPECT_EQ(v, 0.f);
  reset_range_events();
  for (int i = 0; i < d; ++i) x[i] = (i % 2 ? -1e-30f : 1e-40f) * (i + 1);
  c.encode(x.data(), rec.data());
  EXPECT_EQ(rec[0] | rec[1] << 8, 1);  // the smallest fp16, 2^-24: rounded up from ~1e-31
  c.decode(rec.data(), y.data());
  for (float v : y) EXPECT_EQ(v, 0.f);
  EXPECT_EQ(range_events().saturated, 0u);
}

TEST(Fp8Codec, NonFiniteInputIsRefused) {
  const Codec c = Codec::make("fp8", 64);
  std::vector<uint8_t> rec(c.record_bytes());
  std::vector<float> x(64, 1.f);
  reset_range_events();
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    x[9] = bad;
    try {
      c.encode(x.data(), rec.data());
      FAIL() << "encoded " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("codec fp8: input coordinate 9 is not finite"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(range_events().nonfinite, 3u);
  reset_range_events();
}

}  // namespace
}  // namespace tq
