#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "turboquant/codebook.h"
#include "turboquant/error.h"

namespace tq {
namespace {

// The classic unit-variance Gaussian Lloyd–Max table (Max 1960).
TEST(Codebook, UnitGaussianKnownLevels) {
  const Codebook c3 = lloyd_max_unit_gaussian(3);
  const float want3[] = {-2.1519f, -1.3439f, -0.7560f, -0.2451f, 0.2451f, 0.7560f, 1.3439f, 2.1519f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(c3.levels[i], want3[i], 2e-4);
  const Codebook c1 = lloyd_max_unit_gaussian(1);
  EXPECT_NEAR(c1.levels[1], std::sqrt(2.0 / 3.141592653589793), 1e-5);
  EXPECT_NEAR(c1.distortion, 1.0 - 2.0 / 3.141592653589793, 1e-5);
  const Codebook c2 = lloyd_max_unit_gaussian(2);
  EXPECT_NEAR(c2.levels[2], 0.4528, 2e-4);
  EXPECT_NEAR(c2.levels[3], 1.5104, 2e-4);
  EXPECT_NEAR(c2.distortion, 0.1175, 2e-4);
  EXPECT_NEAR(c3.distortion, 0.03454, 1e-4);
  EXPECT_NEAR(lloyd_max_unit_gaussian(4).distortion, 0.009497, 5e-5);
}

TEST(Codebook, SymmetricSortedAndMidpointBoundaries) {
  for (auto law : {CoordinateLaw::sphere, CoordinateLaw::gaussian})
    for (int d : {64, 128, 256})
      for (int b = 1; b <= 4; ++b) {
        const Codebook& c = lloyd_max_codebook(law, d, b);
        ASSERT_EQ(c.levels.size(), 1u << b);
        for (size_t i = 0; i + 1 < c.levels.size(); ++i) {
          EXPECT_LT(c.levels[i], c.levels[i + 1]);
          EXPECT_FLOAT_EQ(c.boundaries[i], 0.5f * (c.levels[i] + c.levels[i + 1]));
        }
        for (size_t i = 0; i < c.levels.size(); ++i)
          EXPECT_FLOAT_EQ(c.levels[i], -c.levels[c.levels.size() - 1 - i]);
      }
}

// The sphere law approaches N(0, 1/d) as d grows; at d = 128 the d-scaled distortion is
// the number the TurboQuant paper quotes (0.36 / 0.117 / 0.03 / 0.009).
TEST(Codebook, SphereLawDistortionAtD128) {
  const double want[] = {0.3609, 0.1160, 0.0340, 0.0093};
  for (int b = 1; b <= 4; ++b) {
    const double got = 128 * lloyd_max_codebook(CoordinateLaw::sphere, 128, b).distortion;
    EXPECT_NEAR(got, want[b - 1], 0.01 * want[b - 1]) << "bits " << b;
    const double gauss = 128 * lloyd_max_codebook(CoordinateLaw::gaussian, 128, b).distortion;
    EXPECT_NEAR(got, gauss, 0.03 * gauss) << "bits " << b;
  }
}

TEST(Codebook, SphereLawInLowDimensionIsNotGaussian) {
  // d = 3: one coordinate of a uniform unit vector is uniform on [−1, 1]; Lloyd–Max
  // for a uniform law is the uniform quantizer: levels ±1/4, ±3/4 at 2 bits.
  const Codebook& c = lloyd_max_codebook(CoordinateLaw::sphere, 3, 2);
  EXPECT_NEAR(c.levels[2], 0.25, 1e-4);
  EXPECT_NEAR(c.levels[3], 0.75, 1e-4);
  EXPECT_NEAR(c.distortion, (0.5 * 0.5) / 12, 1e-5);
}

TEST(Codebook, IndexOfPicksNearestLevel) {
  const Codebook& c = lloyd_max_codebook(CoordinateLaw::sphere, 128, 3);
  for (float t = -0.5f; t <= 0.5f; t += 0.001f) {
    const int i = c.index_of(t);
    for (size_t k = 0; k < c.levels.size(); ++k)
      EXPECT_LE(std::fabs(t - c.levels[i]), std::fabs(t - c.levels[k]) + 1e-7f);
  }
}

// The grid lookup must give index_of's answer everywhere: exactly on boundaries (ties go
// up), one float step either side of them, far outside the levels, and between.
TEST(Codebook, NearestMatchesIndexOfOnBoundariesAndBetween) {
  for (int d : {4, 8, 64, 256})
    for (int bits = 1; bits <= 8; ++bits) {
      const Codebook& c = lloyd_max_codebook(CoordinateLaw::sphere, d, bits);
      std::vector<float> ts = {-1e30f, -2.f, 0.f, -0.f, 2.f, 1e30f};
      for (float b : c.boundaries) {
        ts.push_back(b);
        ts.push_back(std::nextafter(b, -1e30f));
        ts.push_back(std::nextafter(b, 1e30f));
      }
      for (int i = 0; i <= 2000; ++i) ts.push_back(-1.2f + 2.4f * static_cast<float>(i) / 2000.f);
      for (float t : ts) ASSERT_EQ(c.nearest(t), c.index_of(t)) << "d " << d << " bits " << bits << " t " << t;
    }
}

TEST(Codebook, BadArguments) {
  EXPECT_THROW(lloyd_max_codebook(CoordinateLaw::sphere, 128, 0), Error);
  EXPECT_THROW(lloyd_max_codebook(CoordinateLaw::sphere, 128, 9), Error);
  EXPECT_THROW(lloyd_max_codebook(CoordinateLaw::sphere, 1, 3), Error);
}

}  // namespace
}  // namespace tq
