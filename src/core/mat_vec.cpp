#include "mat_vec.h"

#include <algorithm>
#include <cstddef>

namespace tq::detail {

std::vector<float> columns_of(const std::vector<float>& m, int d) {
  std::vector<float> t(m.size());
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) t[static_cast<size_t>(j) * d + i] = m[static_cast<size_t>(i) * d + j];
  return t;
}

namespace {

// Outputs [i0, i0 + N): N sums held in a local array the compiler keeps in registers.
template <int N>
void block(const float* __restrict cols, int d, int i0, const float* __restrict x, float* __restrict y) {
  float acc[N] = {};
  for (int j = 0; j < d; ++j) {
    const float* c = cols + static_cast<size_t>(j) * d + i0;
    const float xj = x[j];
    for (int i = 0; i < N; ++i) acc[i] += c[i] * xj;
  }
  for (int i = 0; i < N; ++i) y[i0 + i] = acc[i];
}

}  // namespace

void mat_vec_cols(const float* cols, int d, const float* x, float* y) {
  int i0 = 0;
  for (; i0 + 64 <= d; i0 += 64) block<64>(cols, d, i0, x, y);
  for (; i0 + 16 <= d; i0 += 16) block<16>(cols, d, i0, x, y);
  for (; i0 + 8 <= d; i0 += 8) block<8>(cols, d, i0, x, y);
  for (; i0 < d; ++i0) block<1>(cols, d, i0, x, y);
}

}  // namespace tq::detail
