// Next-token sampling: greedy is argmax, sampling follows softmax(logits / T) over the
// top k, bad inputs are errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/sampler.h"

namespace tq {
namespace {

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  Rng rng(1);
  const std::vector<float> l = {0.5f, 2.f, -1.f, 2.f};
  EXPECT_EQ(sample_token(l.data(), 4, SamplerParams{0.f, 40}, rng), 1);
  EXPECT_EQ(argmax(l.data(), 4), 1);
  EXPECT_EQ(sample_token(l.data(), 4, SamplerParams{1.f, 1}, rng), 1) << "top-1 sampling is greedy";
}

TEST(Sampler, FrequenciesFollowTemperedSoftmax) {
  Rng rng(7);
  const std::vector<float> l = {1.f, 0.f, -1.f, -30.f};
  const float T = 2.f;
  const int draws = 40000;
  std::vector<int> count(4, 0);
  for (int i = 0; i < draws; ++i) ++count[sample_token(l.data(), 4, SamplerParams{T, 3}, rng)];
  double z = 0;
  for (int i = 0; i < 3; ++i) z += std::exp(l[i] / T);
  for (int i = 0; i < 3; ++i) {
    const double p = std::exp(l[i] / T) / z;
    // 5 standard deviations of a binomial frequency.
    EXPECT_NEAR(count[i] / double(draws), p, 5 * std::sqrt(p * (1 - p) / draws)) << "token " << i;
  }
  EXPECT_EQ(count[3], 0) << "token outside the top 3";
}

TEST(Sampler, BadInputs) {
  Rng rng(1);
  std::vector<float> l = {0.f, 1.f};
  EXPECT_THROW(sample_token(l.data(), 0, SamplerParams{}, rng), Error);
  EXPECT_THROW(sample_token(l.data(), 2, SamplerParams{-1.f, 40}, rng), Error);
  l[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(sample_token(l.data(), 2, SamplerParams{}, rng), Error);
}

}  // namespace
}  // namespace tq
