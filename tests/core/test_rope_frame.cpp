// RoPE frames (rope_frame.h): turning a key RoPE'd at position p back by its frame's start s
// gives the key RoPE'd at p − s; turns are rotations (norms and dot products kept); frame
// arithmetic; bad pairings refused.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/rng.h"
#include "turboquant/rope_frame.h"

namespace tq {
namespace {

constexpr int kDim = 8;

// NeoX-style pairs (i, i + 4); angles per layer.
std::vector<int> partners() { return {4, 5, 6, 7, 0, 1, 2, 3}; }

std::vector<std::vector<double>> thetas() {
  std::vector<std::vector<double>> t(2, std::vector<double>(kDim));
  for (int i = 0; i < 4; ++i) {
    t[0][i] = t[0][i + 4] = std::pow(10000.0, -i / 4.0);
    t[1][i] = t[1][i + 4] = std::pow(1e6, -i / 4.0);  // another base, as Gemma 3's global layers
  }
  return t;
}

// RoPE at position p: the pair (i, j) as the complex number x_i + i·x_j times e^{iθp}.
std::vector<float> rope(std::vector<float> x, const std::vector<double>& theta, long p) {
  const std::vector<int> pr = partners();
  for (int i = 0; i < kDim; ++i) {
    if (pr[i] <= i) continue;
    const std::complex<double> z = std::complex<double>(x[i], x[pr[i]]) * std::polar(1.0, theta[i] * p);
    x[i] = static_cast<float>(z.real());
    x[pr[i]] = static_cast<float>(z.imag());
  }
  return x;
}

TEST(RopeFrames, TurnBackEqualsRopeAtTheOffsetInTheFrame) {
  const RopeFrames f(512, partners(), thetas());
  ASSERT_TRUE(f.on());
  Rng rng(7);
  std::vector<float> k(kDim);
  for (float& x : k) x = static_cast<float>(rng.gaussian());
  for (int layer : {0, 1})
    for (long p : {0L, 5L, 511L, 512L, 1000L, 70000L}) {
      const int start = f.frame_start(f.frame(static_cast<int>(p)));
      EXPECT_LE(start, p);
      EXPECT_LT(p - start, 512);
      std::vector<float> turned = rope(k, thetas()[layer], p);
      f.turn_back(layer, start).apply(turned.data());
      const std::vector<float> want = rope(k, thetas()[layer], p - start);
      for (int i = 0; i < kDim; ++i) EXPECT_NEAR(turned[i], want[i], 2e-5) << "layer " << layer << " p " << p << " i " << i;
    }
}

TEST(RopeFrames, TurnsAreRotations) {
  const RopeFrames f(64, partners(), thetas());
  Rng rng(9);
  std::vector<float> a(kDim), b(kDim);
  for (float& x : a) x = static_cast<float>(rng.gaussian());
  for (float& x : b) x = static_cast<float>(rng.gaussian());
  double dot0 = 0;
  for (int i = 0; i < kDim; ++i) dot0 += double(a[i]) * b[i];
  const RopeFrames::Turn t = f.turn_back(1, 64 * 37);
  EXPECT_FALSE(t.identity());
  t.apply(a.data());
  t.apply(b.data());
  double dot1 = 0;
  for (int i = 0; i < kDim; ++i) dot1 += double(a[i]) * b[i];
  EXPECT_NEAR(dot1, dot0, 1e-5 * (1 + std::abs(dot0)));
}

TEST(RopeFrames, FrameArithmeticAndOff) {
  const RopeFrames f(48, partners(), thetas());
  EXPECT_EQ(f.frame(0), 0);
  EXPECT_EQ(f.frame(47), 0);
  EXPECT_EQ(f.frame(48), 1);
  EXPECT_EQ(f.frame_start(3), 144);
  EXPECT_TRUE(f.turn_back(0, 0).identity());
  const RopeFrames off(0, partners(), thetas());
  EXPECT_FALSE(off.on());
  EXPECT_EQ(off.frame(100000), 0);
  EXPECT_TRUE(off.turn_back(0, 96).identity());
}

TEST(RopeFrames, RefusesABadPairing) {
  EXPECT_THROW(RopeFrames(64, {1, 2, 0, 3}, {}), Error);
  EXPECT_THROW(RopeFrames(64, {1, 0, 9, 3}, {}), Error);
  EXPECT_THROW(RopeFrames(64, {1, 0}, {{0.1}}), Error) << "angles of the wrong length";
}

}  // namespace
}  // namespace tq
