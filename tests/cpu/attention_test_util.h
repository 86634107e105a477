#pragma once
// Shared by the CPU tests: random K/V/Q, a comparison that states its tolerance, and the
// (codec, head_dim) grid every fast path is checked on.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "turboquant/attention.h"
#include "turboquant/codec.h"
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

inline const char* path_name(AttendPath p) {
  return p == AttendPath::avx512 ? "avx512" : p == AttendPath::avx2 ? "avx2" : "portable";
}

// Every codec of the table at head_dim 64, 128 and 256, and a gtest name for each.
using CodecDim = std::tuple<std::string, int>;
inline std::vector<CodecDim> all_codecs_and_dims() {
  std::vector<CodecDim> out;
  for (const auto& spec : codec_table())
    for (int d : {64, 128, 256}) out.emplace_back(std::string(spec.name), d);
  return out;
}
inline std::string codec_dim_name(const ::testing::TestParamInfo<CodecDim>& info) {
  std::string n = std::get<0>(info.param) + "_d" + std::to_string(std::get<1>(info.param));
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

}  // namespace tq::test
