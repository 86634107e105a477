// The quantized matrix kernels (src/model/qmatmul*.cpp) against dequantize-then-dot in
// double, for every weight type and every path, forced explicitly, on random blocks.
//
// Tolerance: the activations are rounded per block (32 elements, or 256 for the
// K-quants) to d·q with d = amax/127, an error of at most amax/254 per element, so
//   |kernel − exact| <= Σ_i |w_i| · amax(x over i's block) / 254  (+ float slack 1e-5·Σ|w_i·x_i|).
// F16/BF16 multiply f32 activations: float slack only. SIMD paths compute the same
// integer block sums as the portable path: they agree with it to float slack. Tighter
// still, each kernel equals the dequantized weights times the activations rounded the
// way the kernels round them, to float slack 2e-5·Σ|w_i·x_i|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "qmatmul.h"
#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/half.h"
#include "turboquant/rng.h"
#include "turboquant/thread_pool.h"

namespace tq::model {
namespace {

using gguf::GgmlType;

struct TypeCase {
  GgmlType type;
  int block;                      // weight block elements
  int act_block;                  // activation block elements (0: f32 activations)
  size_t block_bytes;
  std::vector<int> half_offsets;  // fp16 scale fields inside a block, set to sane values
};

const std::vector<TypeCase>& cases() {
  static const std::vector<TypeCase> c = {
      {GgmlType::F16, 1, 0, 2, {}},           {GgmlType::BF16, 1, 0, 2, {}},
      {GgmlType::Q4_0, 32, 32, 18, {0}},      {GgmlType::Q4_1, 32, 32, 20, {0, 2}},
      {GgmlType::Q5_0, 32, 32, 22, {0}},      {GgmlType::Q5_1, 32, 32, 24, {0, 2}},
      {GgmlType::Q8_0, 32, 32, 34, {0}},      {GgmlType::Q4_K, 256, 256, 144, {0, 2}},
      {GgmlType::Q5_K, 256, 256, 176, {0, 2}}, {GgmlType::Q6_K, 256, 256, 210, {208}},
  };
  return c;
}

// Random weights: every code and sub-scale random bytes (all bit patterns are valid
// codes), the fp16 scales random in ±[0.002, 0.05]; F16/BF16 from random floats.
std::vector<uint8_t> random_weights(const TypeCase& tc, int rows, int cols, Rng& rng) {
  const size_t n = static_cast<size_t>(rows) * cols;
  if (tc.block == 1) {
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(rng.gaussian());
    return gguf::quantize(tc.type, v.data(), n);
  }
  std::vector<uint8_t> bytes(n / tc.block * tc.block_bytes);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng.below(256));
  for (size_t blk = 0; blk < bytes.size() / tc.block_bytes; ++blk) {
    for (int off : tc.half_offsets) {
      const float s = (0.002f + 0.048f * static_cast<float>(rng.uniform())) * (rng.below(2) ? 1.0f : -1.0f);
      const uint16_t h = float_to_half(s);
      std::memcpy(bytes.data() + blk * tc.block_bytes + off, &h, 2);
    }
  }
  return bytes;
}

// Activations with a few outliers, as real hidden states have.
std::vector<float> random_x(int n, Rng& rng) {
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(rng.gaussian()) * (rng.below(50) == 0 ? 20.0f : 1.0f);
  return x;
}

QMatrix view(const TypeCase& tc, const std::vector<uint8_t>& bytes, int rows, int cols) {
  QMatrix m;
  m.name = "test." + std::string(gguf::type_name(tc.type));
  m.type = tc.type;
  m.data = bytes.data();
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = static_cast<size_t>(cols / tc.block) * tc.block_bytes;
  return m;
}

struct Expected {
  double exact, bound;
  double on_rounded_x;  // Σ w·x̂ with x̂ the activations as the kernels round them
  double slack;         // float slack of that sum
};

// x rounded per block exactly as the kernels do (d = amax/127, q = nearbyint(x·(1/d))).
std::vector<float> rounded(const std::vector<float>& x, int block) {
  if (block == 0) return x;
  std::vector<float> r(x.size());
  for (size_t b0 = 0; b0 < x.size(); b0 += block) {
    float amax = 0;
    for (size_t i = b0; i < b0 + block; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    for (size_t i = b0; i < b0 + block; ++i) r[i] = d * std::nearbyint(x[i] * id);
  }
  return r;
}

Expected expected_dot(const TypeCase& tc, const QMatrix& m, int r, const std::vector<float>& x) {
  std::vector<float> w(m.cols);
  qmatrix_row(m, r, w.data());
  const std::vector<float> xr = rounded(x, tc.act_block);
  double exact = 0, abs_sum = 0, rounding = 0, on_rounded = 0;
  for (int i = 0; i < m.cols; ++i) {
    exact += static_cast<double>(w[i]) * x[i];
    abs_sum += std::fabs(static_cast<double>(w[i]) * x[i]);
    on_rounded += static_cast<double>(w[i]) * xr[i];
  }
  if (tc.act_block > 0) {
    for (int b0 = 0; b0 < m.cols; b0 += tc.act_block) {
      float amax = 0;
      for (int i = b0; i < b0 + tc.act_block; ++i) amax = std::max(amax, std::fabs(x[i]));
      for (int i = b0; i < b0 + tc.act_block; ++i) rounding += std::fabs(static_cast<double>(w[i])) * amax / 254.0;
    }
  }
  return {exact, rounding + 1e-5 * abs_sum + 1e-6, on_rounded, 2e-5 * abs_sum + 1e-6};
}

std::vector<QPath> paths() { return {QPath::portable, QPath::avx2, QPath::avx512}; }

class QMatmulType : public ::testing::TestWithParam<int> {};

TEST_P(QMatmulType, EveryPathMatchesDequantizedDotWithinActivationRounding) {
  const TypeCase& tc = cases()[GetParam()];
  Rng rng(100 + GetParam());
  for (int cols : {256, 512, 768}) {
    const int rows = 9;
    const auto bytes = random_weights(tc, rows, cols, rng);
    const QMatrix m = view(tc, bytes, rows, cols);
    const auto x = random_x(cols, rng);
    for (int r = 0; r < rows; ++r) {
      const Expected e = expected_dot(tc, m, r, x);
      const float portable = qdot_row(m, r, x.data(), QPath::portable);
      for (QPath p : paths()) {
        if (!qpath_available(p)) continue;
        const float got = qdot_row(m, r, x.data(), p);
        EXPECT_NEAR(got, e.exact, e.bound) << qpath_name(p) << " cols " << cols << " row " << r;
        // The tight check: the rounding above is the only error.
        EXPECT_NEAR(got, e.on_rounded_x, e.slack) << qpath_name(p) << " (rounded x) cols " << cols << " row " << r;
        // Same integer sums as the portable path: only float order differs.
        EXPECT_NEAR(got, portable, 1e-5 * std::fabs(e.bound) + 1e-5 * std::fabs(e.exact) + 1e-5)
            << qpath_name(p) << " vs portable, cols " << cols << " row " << r;
      }
    }
  }
}

// The whole product: rows split over a pool, several tokens (the integer kernels per
// token, and from 8 tokens on the dequantized-tile sgemm), bias added.
TEST_P(QMatmulType, MatmulEqualsRowDotsOnEveryPath) {
  const TypeCase& tc = cases()[GetParam()];
  Rng rng(200 + GetParam());
  const int rows = 70, cols = 512;
  const auto bytes = random_weights(tc, rows, cols, rng);
  const QMatrix m = view(tc, bytes, rows, cols);
  std::vector<float> bias(rows);
  for (float& b : bias) b = static_cast<float>(rng.gaussian());
  ThreadPool pool(3);
  for (int n : {1, 3, 9}) {
    const auto x = random_x(n * cols, rng);
    for (QPath p : paths()) {
      if (!qpath_available(p)) continue;
      std::vector<float> y(static_cast<size_t>(n) * rows);
      qmatmul(x.data(), n, m, bias.data(), y.data(), &pool, p);
      for (int t = 0; t < n; ++t) {
        const std::vector<float> xt(x.begin() + t * cols, x.begin() + (t + 1) * cols);
        for (int r = 0; r < rows; ++r) {
          const Expected e = expected_dot(tc, m, r, xt);
          EXPECT_NEAR(y[static_cast<size_t>(t) * rows + r], e.exact + bias[r], e.bound + 1e-5 * std::fabs(bias[r]))
              << qpath_name(p) << " n " << n << " token " << t << " row " << r;
        }
      }
    }
  }
}

// The prefill tiles' rows to f32 (vectorized on the SIMD paths) against the reference
// gguf::dequantize: the same float operations per element, so equal bit for bit.
TEST_P(QMatmulType, TileRowsEqualDequantizeOnEveryPath) {
  const TypeCase& tc = cases()[GetParam()];
  Rng rng(300 + GetParam());
  const int rows = 6, cols = 768;
  const auto bytes = random_weights(tc, rows, cols, rng);
  const QMatrix m = view(tc, bytes, rows, cols);
  std::vector<float> want(static_cast<size_t>(rows - 1) * cols);
  gguf::dequantize(tc.type, bytes.data() + m.row_bytes, want.size(), want.data());
  for (QPath p : paths()) {
    if (!qpath_available(p)) continue;
    std::vector<float> got(want.size());
    qmatrix_rows_f32(m, 1, rows, got.data(), p);
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << qpath_name(p) << " element " << i;
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<int>& info) {
  return std::string(gguf::type_name(cases()[info.param].type));
}
INSTANTIATE_TEST_SUITE_P(Types, QMatmulType, ::testing::Range(0, 10), case_name);

// Several products of one x in one pass (Q/K/V, gate/up), types mixed so the activations
// are converted to q8 and q8K both: bit-identical to one qmatmul per product.
TEST(QMatmul, ManyEqualsOneAtATime) {
  Rng rng(300);
  const int cols = 512;
  const int type_index[] = {3, 4, 9};  // Q4_1, Q5_0, Q6_K
  const int rows[] = {40, 24, 33};
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<QMatrix> ms;
  for (int i = 0; i < 3; ++i) bytes.push_back(random_weights(cases()[type_index[i]], rows[i], cols, rng));
  for (int i = 0; i < 3; ++i) ms.push_back(view(cases()[type_index[i]], bytes[i], rows[i], cols));
  std::vector<float> bias(40);
  for (float& b : bias) b = static_cast<float>(rng.gaussian());
  ThreadPool pool(2);
  for (int n : {1, 3, 9}) {
    const auto x = random_x(n * cols, rng);
    std::vector<std::vector<float>> many(3), one(3);
    for (int i = 0; i < 3; ++i) {
      many[i].resize(static_cast<size_t>(n) * rows[i]);
      one[i].resize(many[i].size());
      qmatmul(x.data(), n, ms[i], i == 0 ? bias.data() : nullptr, one[i].data(), &pool);
    }
    const QProduct ps[] = {{&ms[0], bias.data(), many[0].data()}, {&ms[1], nullptr, many[1].data()},
                           {&ms[2], nullptr, many[2].data()}};
    qmatmul_many(x.data(), n, ps, 3, &pool);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(many[i], one[i]) << "product " << i << ", n " << n;
  }
}

TEST(QMatmul, PathsReportAvailability) {
  EXPECT_TRUE(qpath_available(QPath::portable));
  EXPECT_TRUE(qpath_available(QPath::best));
  // Logged so a run shows which SIMD paths the tests above covered on this machine.
  for (QPath p : paths()) std::printf("qmatmul path %s: %s\n", qpath_name(p), qpath_available(p) ? "tested" : "unavailable");
}

QMatrix named(const char* name, GgmlType type, const std::vector<uint8_t>& bytes, int rows, int cols, size_t row_bytes) {
  QMatrix m;
  m.name = name;
  m.type = type;
  m.data = bytes.data();
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = row_bytes;
  return m;
}

TEST(QMatmul, UnsupportedTypeNamesTypeAndTensor) {
  std::vector<uint8_t> bytes(84 * 2);
  const QMatrix m = named("blk.3.ffn_up.weight", GgmlType::Q2_K, bytes, 2, 256, 84);
  try {
    check_qmatmul_supported(m);
    FAIL() << "Q2_K accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("blk.3.ffn_up.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Q2_K"), std::string::npos) << msg;
  }
  std::vector<float> x(256), y(2);
  EXPECT_THROW(qmatmul(x.data(), 1, m, nullptr, y.data()), Error);
}

TEST(QMatmul, PartialBlocksRejected) {
  std::vector<uint8_t> bytes(144 * 2);
  const QMatrix m = named("blk.0.attn_q.weight", GgmlType::Q4_K, bytes, 1, 384, 216);  // 1.5 super-blocks
  EXPECT_THROW(check_qmatmul_supported(m), Error);
}

}  // namespace
}  // namespace tq::model
