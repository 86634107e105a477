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

}  // namespace
}  // namespace tq
