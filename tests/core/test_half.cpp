#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "turboquant/half.h"

namespace tq {
namespace {

// Every finite half converts to float and back unchanged.
TEST(Half, AllFiniteHalvesRoundTrip) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7c00u) == 0x7c00u) continue;  // Inf / NaN
    const float f = half_to_float(static_cast<uint16_t>(h));
    ASSERT_EQ(float_to_half(f), h) << "half 0x" << std::hex << h;
  }
}

#if defined(__FLT16_MAX__)
// Against the compiler's own binary16 conversion, on random floats over the full range.
TEST(Half, MatchesCompilerFloat16) {
  uint64_t s = 12345;
  for (int i = 0; i < 1000000; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t bits = static_cast<uint32_t>(s >> 32);
    float f;
    std::memcpy(&f, &bits, 4);
    if (!std::isfinite(f)) continue;
    const _Float16 ref = static_cast<_Float16>(f);
    uint16_t rb;
    std::memcpy(&rb, &ref, 2);
    ASSERT_EQ(float_to_half(f), rb) << f;
  }
}
#endif

TEST(Half, SpecialValues) {
  EXPECT_EQ(float_to_half(0.f), 0u);
  EXPECT_EQ(float_to_half(-0.f), 0x8000u);
  EXPECT_EQ(float_to_half(1.f), 0x3c00u);
  EXPECT_EQ(float_to_half(65504.f), 0x7bffu);
  EXPECT_EQ(float_to_half(1e6f), 0x7c00u);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00u);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
  EXPECT_EQ(half_to_float(0x0001u), std::ldexp(1.f, -24));  // smallest subnormal
}

// Saturation (docs/FORMATS.md, "Range") changes exactly the floats whose fp16 would be
// Inf or NaN: every other float keeps its fp16 bits.
TEST(Half, ClampChangesExactlyWhatWouldNotBeFinite) {
  for (uint64_t bits = 0; bits < (1ull << 32); bits += 4099) {  // every float exponent, both signs
    const uint32_t u = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &u, 4);
    bool clamped = false;
    const float c = clamp_to_half_range(f, clamped);
    const bool half_finite = (float_to_half(f) & 0x7c00u) != 0x7c00u;
    ASSERT_EQ(clamped, !half_finite) << f;
    if (half_finite) {
      ASSERT_EQ(std::memcmp(&c, &f, 4), 0) << f;
    } else {
      ASSERT_EQ(float_to_half(c), std::isnan(f) ? 0u : (std::signbit(f) ? 0xfbffu : 0x7bffu)) << f;
    }
  }
}

TEST(Half, ClampBoundaries) {
  bool clamped = false;
  EXPECT_EQ(clamp_to_half_range(65504.f, clamped), 65504.f);
  EXPECT_EQ(clamp_to_half_range(std::nextafter(65520.f, 0.f), clamped), std::nextafter(65520.f, 0.f));
  EXPECT_EQ(float_to_half(std::nextafter(65520.f, 0.f)), 0x7bffu) << "rounds down to 65504 by itself";
  EXPECT_FALSE(clamped);
  EXPECT_EQ(float_to_half(65520.f), 0x7c00u) << "the first float that rounds to Inf";
  EXPECT_EQ(clamp_to_half_range(65520.f, clamped), 65504.f);
  EXPECT_TRUE(clamped);
  clamped = false;
  EXPECT_EQ(clamp_to_half_range(-1e30f, clamped), -65504.f);
  EXPECT_TRUE(clamped);
  clamped = false;
  EXPECT_EQ(clamp_to_half_range(-std::numeric_limits<float>::infinity(), clamped), -65504.f);
  EXPECT_TRUE(clamped);
  clamped = false;
  const float nan = clamp_to_half_range(std::nanf(""), clamped);
  EXPECT_EQ(float_to_half(nan), 0u);
  EXPECT_TRUE(clamped);
}

}  // namespace
}  // namespace tq
