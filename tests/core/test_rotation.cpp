#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/rng.h"
#include "turboquant/rotation.h"

namespace tq {
namespace {

constexpr RotationKind kAll[] = {RotationKind::none,  RotationKind::dense,      RotationKind::rht,
                                 RotationKind::rotor3, RotationKind::quat4, RotationKind::quat4_left,
                                 RotationKind::givens2};

// Matrix of forward (code_dim x dim) built column by column from basis vectors.
std::vector<double> forward_matrix(const Rotation& r) {
  const int d = r.dim(), n = r.code_dim();
  std::vector<double> m(static_cast<size_t>(n) * d);
  std::vector<float> e(d, 0.f), y(n);
  for (int j = 0; j < d; ++j) {
    e[j] = 1.f;
    r.forward(e.data(), y.data());
    e[j] = 0.f;
    for (int i = 0; i < n; ++i) m[static_cast<size_t>(i) * d + j] = y[i];
  }
  return m;
}

class RotationTest : public ::testing::TestWithParam<std::tuple<RotationKind, int>> {};

TEST_P(RotationTest, IsOrthogonal) {
  const auto [kind, d] = GetParam();
  const auto r = Rotation::make(kind, d, 7);
  const int n = r->code_dim();
  const auto m = forward_matrix(*r);
  double worst = 0;  // ‖MᵀM − I‖_max
  for (int a = 0; a < d; ++a)
    for (int b = 0; b < d; ++b) {
      double s = 0;
      for (int i = 0; i < n; ++i) s += m[i * d + a] * m[i * d + b];
      worst = std::max(worst, std::fabs(s - (a == b ? 1.0 : 0.0)));
    }
  EXPECT_LT(worst, 1e-5) << rotation_name(kind) << " d=" << d;
}

TEST_P(RotationTest, InverseUndoesForward) {
  const auto [kind, d] = GetParam();
  const auto r = Rotation::make(kind, d, 11);
  Rng rng(3);
  std::vector<float> x(d), y(r->code_dim()), back(d);
  for (int t = 0; t < 5; ++t) {
    for (float& v : x) v = static_cast<float>(rng.gaussian());
    r->forward(x.data(), y.data());
    r->inverse(y.data(), back.data());
    for (int i = 0; i < d; ++i) ASSERT_NEAR(back[i], x[i], 1e-4) << rotation_name(kind) << " d=" << d;
  }
}

TEST_P(RotationTest, DeterministicPerSeedAndSeedMatters) {
  const auto [kind, d] = GetParam();
  const auto a = Rotation::make(kind, d, 99), b = Rotation::make(kind, d, 99), c = Rotation::make(kind, d, 100);
  EXPECT_EQ(a->params(), b->params());
  if (kind != RotationKind::none) {
    EXPECT_NE(a->params(), c->params());
  }
}

TEST_P(RotationTest, SerializeRoundTripIsExact) {
  const auto [kind, d] = GetParam();
  const auto r = Rotation::make(kind, d, 5);
  const auto bytes = r->serialize();
  const auto back = Rotation::deserialize(bytes);
  EXPECT_EQ(back->kind(), kind);
  EXPECT_EQ(back->dim(), d);
  EXPECT_EQ(back->seed(), 5u);
  EXPECT_EQ(back->params(), r->params());
  Rng rng(1);
  std::vector<float> x(d), y1(r->code_dim()), y2(r->code_dim());
  for (float& v : x) v = static_cast<float>(rng.gaussian());
  r->forward(x.data(), y1.data());
  back->forward(x.data(), y2.data());
  EXPECT_EQ(y1, y2);
}

INSTANTIATE_TEST_SUITE_P(AllKindsAndDims, RotationTest,
                         ::testing::Combine(::testing::ValuesIn(kAll), ::testing::Values(64, 128, 256)),
                         [](const auto& info) {
                           return std::string(rotation_name(std::get<0>(info.param))) + "_d" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(Rotation, RhtPadsOddDimensionsAndStaysIsometric) {
  const auto r = Rotation::make(RotationKind::rht, 96, 1, RhtOptions{true, 2});
  EXPECT_EQ(r->code_dim(), 128);
  Rng rng(2);
  std::vector<float> x(96), y(128), back(96);
  for (float& v : x) v = static_cast<float>(rng.gaussian());
  r->forward(x.data(), y.data());
  double nx = 0, ny = 0;
  for (float v : x) nx += v * v;
  for (float v : y) ny += v * v;
  EXPECT_NEAR(nx, ny, 1e-3 * nx);
  r->inverse(y.data(), back.data());
  for (int i = 0; i < 96; ++i) EXPECT_NEAR(back[i], x[i], 1e-4);
  // Options survive serialization.
  const auto again = Rotation::deserialize(r->serialize());
  std::vector<float> y2(128);
  again->forward(x.data(), y2.data());
  EXPECT_EQ(y, y2);
}

TEST(Rotation, RotorMatrixEqualsCliffordSandwich) {
  const auto r = Rotation::make(RotationKind::rotor3, 9, 4);
  Rng rng(8);
  std::vector<float> x(9), y(9);
  for (float& v : x) v = static_cast<float>(rng.gaussian());
  r->forward(x.data(), y.data());
  // Recompute chunk 1 with explicit geometric products R v R~.
  const auto p = r->params();
  Multivector3 rotor, v;
  rotor.blade[0] = p[4], rotor.blade[3] = p[5], rotor.blade[5] = p[6], rotor.blade[6] = p[7];
  v.blade[1] = x[3], v.blade[2] = x[4], v.blade[4] = x[5];
  const Multivector3 out = geometric_product(geometric_product(rotor, v), reverse(rotor));
  EXPECT_NEAR(out.blade[1], y[3], 1e-5);
  EXPECT_NEAR(out.blade[2], y[4], 1e-5);
  EXPECT_NEAR(out.blade[4], y[5], 1e-5);
  EXPECT_NEAR(out.blade[7], 0.f, 1e-5);  // no trivector part for a unit rotor
  EXPECT_EQ(r->param_count(), 12u);  // 3 rotors x 4 components
}

TEST(Rotation, ParameterCountsAtD128) {
  EXPECT_EQ(Rotation::make(RotationKind::dense, 128, 0)->param_count(), 16384u);
  EXPECT_EQ(Rotation::make(RotationKind::rht, 128, 0)->param_count(), 128u);
  EXPECT_EQ(Rotation::make(RotationKind::rotor3, 128, 0)->param_count(), 42u * 4 + 1);
  EXPECT_EQ(Rotation::make(RotationKind::quat4, 128, 0)->param_count(), 256u);
  EXPECT_EQ(Rotation::make(RotationKind::quat4_left, 128, 0)->param_count(), 128u);
  EXPECT_EQ(Rotation::make(RotationKind::givens2, 128, 0)->param_count(), 64u);
}

TEST(Rotation, BadInputGivesClearErrors) {
  EXPECT_THROW(Rotation::make(RotationKind::quat4, 126, 0), Error);
  EXPECT_THROW(Rotation::make(RotationKind::givens2, 127, 0), Error);
  EXPECT_THROW(Rotation::make(RotationKind::dense, 1, 0), Error);
  EXPECT_THROW(rotation_from_name("hadamard"), Error);
  auto bytes = Rotation::make(RotationKind::rht, 64, 0)->serialize();
  EXPECT_THROW(Rotation::deserialize(std::span(bytes).first(bytes.size() - 1)), Error);
  bytes[0] = 'X';
  EXPECT_THROW(Rotation::deserialize(bytes), Error);
  auto rb = Rotation::make(RotationKind::rotor3, 64, 0)->serialize();
  rb[43] ^= 0x20;  // corrupt the exponent of a rotor component: no longer unit
  EXPECT_THROW(Rotation::deserialize(rb), Error);
}

// Haar check: the first coordinate of Q e_1 over many seeds has the sphere law's
// variance 1/d and zero mean; without the sign fix QR gives a biased sign.
TEST(Rotation, DenseIsHaarOnFirstColumn) {
  const int d = 16, trials = 400;
  double sum = 0, sum2 = 0;
  for (int s = 0; s < trials; ++s) {
    const auto r = Rotation::make(RotationKind::dense, d, 1000 + s);
    const auto p = r->params();
    sum += p[0];
    sum2 += double(p[0]) * p[0];
  }
  const double mean = sum / trials, var = sum2 / trials - mean * mean;
  EXPECT_LT(std::fabs(mean), 4 * std::sqrt(1.0 / d / trials));
  EXPECT_NEAR(var, 1.0 / d, 0.3 / d);
}

}  // namespace
}  // namespace tq
