// The sensitivity passes' reference kept as top tokens (kv_profile_store.h, detail): the
// coarse KL against the full kl_divergence on random logits.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/eval_metrics.h"
#include "turboquant/kv_profile_store.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

std::vector<float> random_logits(int n, double spread, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(spread * rng.gaussian());
  return x;
}

// Keeping every token, the coarse KL is the full KL.
TEST(SensitivityKl, EveryTokenKeptIsTheFullKl) {
  const int n = 500;
  const auto ref = random_logits(n, 2.0, 1), test = random_logits(n, 2.0, 2);
  const detail::TopTokens t = detail::top_tokens(ref.data(), n, n, 0.0);
  ASSERT_EQ(t.id.size(), static_cast<size_t>(n));
  EXPECT_NEAR(t.tail, 0.0, 1e-9);
  const double full = kl_divergence(ref.data(), test.data(), n);
  EXPECT_GT(full, 0.1);
  EXPECT_NEAR(detail::coarse_kl(t, test.data(), n), full, 1e-5 * full);
}

// Tokens come most likely first, stop once 1 − tail_mass is held, and never exceed max_top.
TEST(SensitivityKl, KeepsTheMostLikelyUntilTheMassIsHeld) {
  const int n = 4000;
  const auto ref = random_logits(n, 3.0, 3);
  const detail::TopTokens t = detail::top_tokens(ref.data(), n, 1000, 1e-3);
  ASSERT_FALSE(t.id.empty());
  for (size_t i = 1; i < t.id.size(); ++i) EXPECT_GE(t.logp[i - 1], t.logp[i]) << i;
  double kept = 0;
  for (double lp : t.logp) kept += std::exp(lp);
  EXPECT_NEAR(kept + t.tail, 1.0, 1e-5);
  EXPECT_TRUE(t.tail <= 1e-3 || t.id.size() == 1000u) << "stopped early: tail " << t.tail;
  EXPECT_GT(t.tail, 0.0) << "a 3-sigma spread over 4000 tokens needs more than it kept";
  // The largest logit is the first kept token.
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (ref[i] > ref[best]) best = i;
  EXPECT_EQ(t.id[0], best);
  EXPECT_EQ(detail::top_tokens(ref.data(), n, 7, 0.0).id.size(), 7u);
}

// Coarsening never raises the KL, and with a small tail it loses almost nothing, for small
// (the sensitivity probes') and large differences alike.
TEST(SensitivityKl, CoarseKlIsALowerBoundCloseToTheFullKl) {
  const int n = 20000;
  for (double noise : {0.02, 0.3}) {
    const auto ref = random_logits(n, 4.0, 4);
    auto test = ref;
    const auto e = random_logits(n, noise, 5);
    for (int i = 0; i < n; ++i) test[i] += e[i];
    const double full = kl_divergence(ref.data(), test.data(), n);
    const detail::TopTokens t = detail::top_tokens(ref.data(), n, 1024, 1e-4);
    const double coarse = detail::coarse_kl(t, test.data(), n);
    EXPECT_LE(coarse, full * (1 + 1e-6)) << "noise " << noise;
    EXPECT_GT(coarse, 0.97 * full) << "noise " << noise << ": kept " << t.id.size() << ", tail " << t.tail;
  }
  const auto same = random_logits(n, 4.0, 6);
  EXPECT_NEAR(detail::coarse_kl(detail::top_tokens(same.data(), n, 64, 1e-4), same.data(), n), 0.0, 1e-12);
}

TEST(SensitivityKl, NothingToKeepIsAnError) {
  const float x[] = {1, 2};
  EXPECT_THROW(detail::top_tokens(x, 2, 0, 1e-4), Error);
  EXPECT_THROW(detail::top_tokens(x, 0, 4, 1e-4), Error);
}

}  // namespace
}  // namespace tq
