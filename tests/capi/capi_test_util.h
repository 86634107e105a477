#pragma once
// Shared by the C API tests: reproducible pseudo-random floats in [-1, 1) and per-run temp paths.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tq::capi_test {

inline std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::vector<float> x(n);
  for (auto& v : x) {
    seed = seed * 1664525u + 1013904223u;
    v = static_cast<float>((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
  }
  return x;
}

// A file name in the temp directory, unique per test run (gtest's random seed).
inline std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("tq_capi_" + name + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed())))
      .string();
}

}  // namespace tq::capi_test
