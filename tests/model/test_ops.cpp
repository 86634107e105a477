// The forward pass's elementwise activations (src/model/ops.h) against the libm formulas
// in double, over the whole range a layer produces and beyond.
//
// Tolerance: exp_approx is within 2e-7 relative of e^x on [-87, 88] (Taylor truncation
// 5e-9 plus float rounding; 7.5e-8 measured on a 1e-4 grid). SwiGLU and GeGLU then
// divide by 1 + e^·, so their results are within 1e-6·|g·up| (+1e-30 near zero) of the
// double formulas; the old libm tanh form of GeGLU lost up to ~1 ulp of 1 to
// cancellation where tanh -> -1, which the logistic form does not.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops.h"
#include "turboquant/rng.h"

namespace tq::model {
namespace {

TEST(Ops, ExpApproxIsWithin2e7RelativeOfExp) {
  double worst = 0.0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(exp_approx(x) - want) / want);
  }
  EXPECT_LT(worst, 2e-7);
  // Beyond the range the value saturates at the ends instead of overflowing.
  EXPECT_FLOAT_EQ(exp_approx(-200.0f), exp_approx(-87.0f));
  EXPECT_FLOAT_EQ(exp_approx(200.0f), exp_approx(88.0f));
  EXPECT_TRUE(std::isfinite(exp_approx(1e30f)));
}

// Values of gate from -30 to 30 (the tails included) and random up.
void check_glu(bool gelu) {
  Rng rng(7);
  std::vector<float> gate, up;
  for (float g = -30.0f; g <= 30.0f; g += 0.003f) {
    gate.push_back(g);
    up.push_back(static_cast<float>(rng.gaussian()));
  }
  std::vector<float> out = gate;
  if (gelu) {
    geglu(out.data(), up.data(), out.size());
  } else {
    swiglu(out.data(), up.data(), out.size());
  }
  for (size_t i = 0; i < gate.size(); ++i) {
    const double g = gate[i];
    const double act = gelu ? 0.5 * g * (1.0 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)))
                            : g / (1.0 + std::exp(-g));
    const double want = act * up[i];
    ASSERT_NEAR(out[i], want, 1e-6 * std::abs(g * up[i]) + 1e-30) << (gelu ? "geglu" : "swiglu") << " at g=" << g;
  }
}

TEST(Ops, GegluMatchesTanhFormula) { check_glu(true); }
TEST(Ops, SwigluMatchesLogisticFormula) { check_glu(false); }

}  // namespace
}  // namespace tq::model
