// Cyclic Jacobi eigen-decomposition: each rotation zeroes one off-diagonal pair; sweeps
// repeat until the off-diagonal mass is below rounding. Simple and accurate, O(n³) per
// sweep; calibration runs it a few dozen times on n <= 256.
#include "turboquant/linalg.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "turboquant/error.h"

namespace tq::linalg {

void eigen_symmetric(const Matrix& a_in, int n, std::vector<double>& w, Matrix& v) {
  if (n <= 0 || a_in.size() != static_cast<size_t>(n) * n) throw Error("eigen_symmetric: bad matrix size");
  Matrix a(a_in.size());
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) a[i * n + j] = 0.5 * (a_in[i * n + j] + a_in[j * n + i]);
  for (double x : a)
    if (!std::isfinite(x)) throw Error("eigen_symmetric: matrix has a non-finite entry");
  v = identity(n);
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int i = 0; i < n; ++i) {
      diag += a[i * n + i] * a[i * n + i];
      for (int j = i + 1; j < n; ++j) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (std::abs(apq) < 1e-300) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return a[x * n + x] > a[y * n + y]; });
  w.resize(n);
  Matrix sorted(v.size());
  for (int j = 0; j < n; ++j) {
    w[j] = a[order[j] * n + order[j]];
    for (int i = 0; i < n; ++i) sorted[i * n + j] = v[i * n + order[j]];
  }
  v = std::move(sorted);
}

Matrix multiply(const Matrix& a, const Matrix& b, int n) {
  Matrix c(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      const double aik = a[i * n + k];
      if (aik == 0) continue;
      for (int j = 0; j < n; ++j) c[i * n + j] += aik * b[k * n + j];
    }
  return c;
}

Matrix transpose(const Matrix& a, int n) {
  Matrix t(a.size());
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) t[j * n + i] = a[i * n + j];
  return t;
}

Matrix multiply_at_b(const Matrix& a, const Matrix& b, int n) { return multiply(transpose(a, n), b, n); }

Matrix identity(int n) {
  Matrix m(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) m[i * n + i] = 1;
  return m;
}

}  // namespace tq::linalg
