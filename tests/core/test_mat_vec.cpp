// The calibrated maps' product by columns (src/core/mat_vec.h) against the row-major loop
// it replaced: bit for bit, since encoded records depend on the summation order. This
// file builds with -ffp-contract=off, as tq_core does, so the reference rounds each
// product and each sum.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "mat_vec.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

std::vector<float> row_major_product(const std::vector<float>& m, int d, const std::vector<float>& x) {
  std::vector<float> y(d);
  for (int i = 0; i < d; ++i) {
    float acc = 0.f;
    for (int j = 0; j < d; ++j) acc += m[static_cast<size_t>(i) * d + j] * x[j];
    y[i] = acc;
  }
  return y;
}

TEST(MatVec, ColumnsMatchRowMajorLoopBitForBit) {
  Rng rng(17);
  for (int d : {8, 24, 64, 72, 128, 200, 256, 1024}) {
    std::vector<float> m(static_cast<size_t>(d) * d), x(d), y(d, -1.f);
    for (float& v : m) v = static_cast<float>(rng.gaussian());
    for (float& v : x) v = static_cast<float>(rng.gaussian() * 3.0);
    const std::vector<float> cols = detail::columns_of(m, d);
    EXPECT_EQ(cols[1], m[d]);  // column 0, row 1
    detail::mat_vec_cols(cols.data(), d, x.data(), y.data());
    const std::vector<float> ref = row_major_product(m, d, x);
    for (int i = 0; i < d; ++i) {
      uint32_t a, b;
      std::memcpy(&a, &y[i], 4);
      std::memcpy(&b, &ref[i], 4);
      ASSERT_EQ(a, b) << "d=" << d << " output " << i << ": " << y[i] << " vs " << ref[i];
    }
  }
}

}  // namespace
}  // namespace tq
