// The quantize kernels' register code search (src/cuda/register_search.h) against
// Codebook::index_of, on the CPU (no GPU needed): every boundary exactly, its float
// neighbours, zeros, infinities, NaN and random coordinates, for the codebooks the mse
// codecs use (sphere law, d = 64/128/256, 1-3 bits).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "register_search.h"
#include "turboquant/codebook.h"

namespace tq::cuda::detail {
namespace {

template <int kBits>
void expect_same_codes(int dim) {
  const Codebook& cb = lloyd_max_codebook(CoordinateLaw::sphere, dim, kBits);
  ASSERT_EQ(cb.boundaries.size(), static_cast<size_t>((1 << kBits) - 1));
  RegBounds<kBits> r;
  for (int i = 0; i < (1 << kBits) - 1; ++i) r.b[i] = cb.boundaries[i];
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> ts = {0.f, -0.f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), 1.f, -1.f};
  for (float b : cb.boundaries) ts.insert(ts.end(), {b, std::nextafter(b, inf), std::nextafter(b, -inf), -b});
  std::mt19937 rng(1234 + dim * 4 + kBits);
  std::normal_distribution<float> coord(0.f, 1.f / std::sqrt(static_cast<float>(dim)));
  for (int i = 0; i < 100000; ++i) ts.push_back(coord(rng));
  for (float t : ts)
    ASSERT_EQ(static_cast<int>(bucketize_regs<kBits>(t, r)), cb.index_of(t))
        << "t = " << t << ", d = " << dim << ", " << kBits << " bits";
}

TEST(RegisterSearch, MatchesCodebookIndexOf) {
  for (int dim : {64, 128, 256}) {
    expect_same_codes<1>(dim);
    expect_same_codes<2>(dim);
    expect_same_codes<3>(dim);
  }
}

// Every code of a width is reached (the select tree picks each boundary somewhere).
TEST(RegisterSearch, ReachesEveryCode) {
  const Codebook& cb = lloyd_max_codebook(CoordinateLaw::sphere, 128, 3);
  RegBounds<3> r;
  for (int i = 0; i < 7; ++i) r.b[i] = cb.boundaries[i];
  for (int k = 0; k < 8; ++k) EXPECT_EQ(bucketize_regs<3>(cb.levels[k], r), static_cast<uint32_t>(k)) << k;
}

}  // namespace
}  // namespace tq::cuda::detail
