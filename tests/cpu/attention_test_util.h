#pragma once
// Shared by the attention tests: random K/V/Q and a comparison that states its tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "turboquant/rng.h"

namespace tq::test {

// A fresh seed per run (printed by the tests on failure), so repeated runs cover new inputs.
inline uint64_t fresh_seed() { return (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}(); }

inline std::vector<float> gaussian(Rng& rng, size_t n, float sd = 1.f) {
  std::vector<float> v(n);
  for (float& x : v) x = sd * static_cast<float>(rng.gaussian());
  return v;
}

// Largest relative L2 error over rows of `dim` floats: max_r |a_r - b_r| / max(|b_r|, floor).
inline double max_row_rel_error(const std::vector<float>& a, const std::vector<float>& b, int dim) {
  double worst = 0;
  for (size_t r = 0; r * dim < b.size(); ++r) {
    double d2 = 0, n2 = 0;
    for (int j = 0; j < dim; ++j) {
      const double d = double(a[r * dim + j]) - b[r * dim + j];
      d2 += d * d;
      n2 += double(b[r * dim + j]) * b[r * dim + j];
    }
    worst = std::max(worst, std::sqrt(d2) / std::max(std::sqrt(n2), 1e-3));
  }
  return worst;
}

}  // namespace tq::test
