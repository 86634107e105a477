#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/qk_balance.h"

namespace tq {
namespace {

std::vector<float> normal(size_t n, std::mt19937& g, float sd = 1.0f) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

double dot(const float* a, const float* b, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += double(a[i]) * b[i];
  return s;
}

// Rotates every RoPE pair of x by its own angle (what RoPE does at one position).
void rotate_pairs(std::vector<float>& x, const std::vector<int>& partner, const std::vector<double>& angle) {
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t j = partner[i];
    if (j <= i) continue;
    const double c = std::cos(angle[i]), s = std::sin(angle[i]);
    const double a = x[i], b = x[j];
    x[i] = static_cast<float>(c * a - s * b);
    x[j] = static_cast<float>(s * a + c * b);
  }
}

TEST(RopePartners, AdjacentNeoxAndPartialLayouts) {
  const auto adj = rope_partners(8, 8, false);
  EXPECT_EQ(adj, (std::vector<int>{1, 0, 3, 2, 5, 4, 7, 6}));
  const auto neox = rope_partners(8, 8, true);
  EXPECT_EQ(neox, (std::vector<int>{4, 5, 6, 7, 0, 1, 2, 3}));
  const auto part = rope_partners(8, 4, true);  // last 4 coordinates are not rotated
  EXPECT_EQ(part, (std::vector<int>{2, 3, 0, 1, 4, 5, 6, 7}));
  EXPECT_THROW(rope_partners(8, 5, false), Error);
  EXPECT_THROW(rope_partners(8, 10, false), Error);
  EXPECT_THROW(rope_partners(0, 0, false), Error);
}

// Scores q·k are unchanged by the balance for every query head of every group.
TEST(QkBalance, ApplyKeepsEveryScore) {
  std::mt19937 g(1);
  const int L = 2, H = 6, KH = 2, D = 16, N = 5, group = H / KH;
  std::uniform_real_distribution<float> u(0.1f, 8.0f);
  std::vector<float> s(static_cast<size_t>(L) * KH * D);
  for (float& x : s) x = u(g);
  const QkBalance bal(L, KH, D, s);
  auto q = normal(static_cast<size_t>(N) * H * D, g), k = normal(static_cast<size_t>(N) * KH * D, g);
  const auto q0 = q, k0 = k;
  bal.apply(1, N, H, q.data(), k.data());
  for (int tq = 0; tq < N; ++tq)
    for (int tk = 0; tk < N; ++tk)
      for (int h = 0; h < H; ++h) {
        const size_t qo = (size_t(tq) * H + h) * D, ko = (size_t(tk) * KH + h / group) * D;
        const double before = dot(&q0[qo], &k0[ko], D), after = dot(&q[qo], &k[ko], D);
        EXPECT_NEAR(after, before, 1e-5 * (1 + std::abs(before)));
      }
  EXPECT_NE(k, k0) << "the keys should be scaled";
  QkBalance().apply(0, N, H, q.data(), k.data());  // empty: identity, any layer
}

// finish() gives s = (E q² / E k²)^(1/4) per pair, geometric mean 1, tied within pairs,
// so it commutes with RoPE at any position.
TEST(QkBalanceStats, RecoversTheOptimalPairScaleAndCommutesWithRope) {
  std::mt19937 g(2);
  const int H = 2, KH = 1, D = 8, N = 20000;
  const auto partner = rope_partners(D, D, false);
  const float sq[D] = {4, 4, 1, 1, 0.5f, 0.5f, 2, 2}, sk[D] = {0.25f, 0.25f, 1, 1, 3, 3, 2, 2};
  QkBalanceStats stats(1, H, KH, D, partner);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(N) * H * D), k(static_cast<size_t>(N) * KH * D);
  for (int t = 0; t < N; ++t) {
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < D; ++i) q[(size_t(t) * H + h) * D + i] = sq[i] * nd(g);
    for (int i = 0; i < D; ++i) k[size_t(t) * D + i] = sk[i] * nd(g);
  }
  stats.add(0, N, q.data(), k.data());
  const QkBalance bal = stats.finish();
  const float* s = bal.scale(0, 0);
  double log_mean = 0, expect_log_mean = 0;
  for (int i = 0; i < D; ++i) {
    log_mean += std::log(s[i]) / D;
    expect_log_mean += 0.5 * std::log(sq[i] / sk[i]) / D;
    EXPECT_FLOAT_EQ(s[i], s[partner[i]]);
  }
  EXPECT_NEAR(log_mean, 0.0, 1e-6);
  for (int i = 0; i < D; ++i) {
    const double expect = std::exp(0.5 * std::log(sq[i] / sk[i]) - expect_log_mean);
    EXPECT_NEAR(s[i], expect, 0.03 * expect) << i;
  }
  // s ⊙ RoPE(k) == RoPE(s ⊙ k) for arbitrary pair angles.
  std::vector<double> angle(D);
  for (int i = 0; i < D; ++i) angle[i] = 0.37 * (i / 2 + 1);
  std::vector<float> a(k.begin(), k.begin() + D), b = a;
  rotate_pairs(a, partner, angle);
  for (int i = 0; i < D; ++i) a[i] *= s[i];
  for (int i = 0; i < D; ++i) b[i] *= s[i];
  rotate_pairs(b, partner, angle);
  for (int i = 0; i < D; ++i) EXPECT_NEAR(a[i], b[i], 1e-5f * (1 + std::abs(a[i])));
}

// The point of the balance: on keys and queries with opposite channel profiles, the score
// error of a 3-bit key codec falls (here by far more than the 30% the test asks).
TEST(QkBalanceStats, CutsTheScoreErrorOfA3BitKeyCodecOnAnisotropicData) {
  std::mt19937 g(3);
  const int D = 64, N = 2000;
  const auto partner = rope_partners(D, D, true);
  std::vector<float> sq(D), sk(D);
  for (int i = 0; i < D; ++i) {
    const int pair = i % (D / 2);
    sk[i] = pair < 4 ? 12.0f : 1.0f;   // a few loud key channels ...
    sq[i] = pair < 4 ? 0.1f : 1.0f;    // ... that the queries barely use
  }
  auto sample = [&](const std::vector<float>& sd) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(N) * D);
    for (int t = 0; t < N; ++t)
      for (int i = 0; i < D; ++i) v[size_t(t) * D + i] = sd[i] * nd(g);
    return v;
  };
  const auto q = sample(sq), k = sample(sk);
  QkBalanceStats stats(1, 1, 1, D, partner);
  stats.add(0, N, q.data(), k.data());
  const QkBalance bal = stats.finish();

  const Codec codec = Codec::make("turbo3", D, 5);
  std::vector<uint8_t> rec(codec.record_bytes());
  std::vector<float> dec(D);
  auto score_error = [&](bool balanced) {
    double err2 = 0;
    for (int t = 0; t < 500; ++t) {
      std::vector<float> qt(q.begin() + size_t(t) * D, q.begin() + size_t(t + 1) * D);
      std::vector<float> kt(k.begin() + size_t(t + 500) * D, k.begin() + size_t(t + 501) * D);
      const double exact = dot(qt.data(), kt.data(), D);
      if (balanced) bal.apply(0, 1, 1, qt.data(), kt.data());
      codec.encode(kt.data(), rec.data());
      codec.decode(rec.data(), dec.data());
      const double e = dot(qt.data(), dec.data(), D) - exact;
      err2 += e * e;
    }
    return std::sqrt(err2 / 500);
  };
  const double plain = score_error(false), balanced = score_error(true);
  EXPECT_LT(balanced, 0.7 * plain) << "plain " << plain << ", balanced " << balanced;
}

TEST(QkBalance, RejectsBadInput) {
  EXPECT_THROW(QkBalance(1, 1, 4, {1, 1, 1}), Error);
  EXPECT_THROW(QkBalance(1, 1, 4, {1, 1, 0, 1}), Error);
  EXPECT_THROW(QkBalance(1, 1, 4, {1, 1, NAN, 1}), Error);
  EXPECT_THROW(QkBalance(0, 1, 4, {}), Error);
  // 2147418113 · 1718039348 · 5 = 2^64 + 4: four scales must not pass for that many.
  EXPECT_THROW(QkBalance(2147418113, 1718039348, 5, {1, 1, 1, 1}), Error);
  const QkBalance bal(1, 2, 4, std::vector<float>(8, 2.0f));
  EXPECT_THROW(bal.scale(1, 0), Error);
  std::vector<float> q(12), k(8);
  EXPECT_THROW(bal.apply(0, 1, 3, q.data(), k.data()), Error) << "3 query heads over 2 KV heads";
  QkBalanceStats stats(2, 2, 1, 4, rope_partners(4, 4, false));
  std::vector<float> q2(8, 1.0f), k2(4, 1.0f);
  stats.add(0, 1, q2.data(), k2.data());
  EXPECT_THROW(stats.finish(), Error) << "layer 1 saw no tokens";
  EXPECT_THROW(stats.add(2, 1, q2.data(), k2.data()), Error);
  EXPECT_THROW(QkBalanceStats(1, 3, 2, 4, rope_partners(4, 4, false)), Error);
  EXPECT_THROW(QkBalanceStats(1, 2, 1, 4, {0, 1}), Error);
}

}  // namespace
}  // namespace tq
