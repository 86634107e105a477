// Symmetric eigen-decomposition the classic way: Householder reduction to tridiagonal
// form with the transforms accumulated, then implicit QL with Wilkinson-style shifts on
// the tridiagonal matrix. O(n³) once (a few times faster than cyclic Jacobi sweeps at
// n = 256, where calibration runs it dozens of times), accurate to rounding.
#include "turboquant/linalg.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "turboquant/error.h"

namespace tq::linalg {

namespace {

// Householder: on return v holds the orthogonal Q with Qᵀ A Q tridiagonal, diagonal d and
// subdiagonal e (e[i] couples i-1 and i; e[0] = 0). v enters holding A.
void tridiagonalize(int n, Matrix& v, std::vector<double>& d, std::vector<double>& e) {
  auto V = [&](int i, int j) -> double& { return v[static_cast<size_t>(i) * n + j]; };
  for (int j = 0; j < n; ++j) d[j] = V(n - 1, j);
  for (int i = n - 1; i > 0; --i) {
    double scale = 0, h = 0;
    for (int k = 0; k < i; ++k) scale += std::abs(d[k]);
    if (scale == 0) {
      e[i] = d[i - 1];
      for (int j = 0; j < i; ++j) {
        d[j] = V(i - 1, j);
        V(i, j) = 0;
        V(j, i) = 0;
      }
    } else {
      for (int k = 0; k < i; ++k) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      double f = d[i - 1];
      double g = f > 0 ? -std::sqrt(h) : std::sqrt(h);
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (int j = 0; j < i; ++j) e[j] = 0;
      for (int j = 0; j < i; ++j) {
        f = d[j];
        V(j, i) = f;
        g = e[j] + V(j, j) * f;
        for (int k = j + 1; k <= i - 1; ++k) {
          g += V(k, j) * d[k];
          e[k] += V(k, j) * f;
        }
        e[j] = g;
      }
      f = 0;
      for (int j = 0; j < i; ++j) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const double hh = f / (h + h);
      for (int j = 0; j < i; ++j) e[j] -= hh * d[j];
      for (int j = 0; j < i; ++j) {
        f = d[j];
        g = e[j];
        for (int k = j; k <= i - 1; ++k) V(k, j) -= f * e[k] + g * d[k];
        d[j] = V(i - 1, j);
        V(i, j) = 0;
      }
    }
    d[i] = h;
  }
  // Accumulate the transformations.
  for (int i = 0; i < n - 1; ++i) {
    V(n - 1, i) = V(i, i);
    V(i, i) = 1;
    const double h = d[i + 1];
    if (h != 0) {
      for (int k = 0; k <= i; ++k) d[k] = V(k, i + 1) / h;
      for (int j = 0; j <= i; ++j) {
        double g = 0;
        for (int k = 0; k <= i; ++k) g += V(k, i + 1) * V(k, j);
        for (int k = 0; k <= i; ++k) V(k, j) -= g * d[k];
      }
    }
    for (int k = 0; k <= i; ++k) V(k, i + 1) = 0;
  }
  for (int j = 0; j < n; ++j) {
    d[j] = V(n - 1, j);
    V(n - 1, j) = 0;
  }
  V(n - 1, n - 1) = 1;
  e[0] = 0;
}

// Implicit QL on the tridiagonal (d, e), rotating v's columns along; d becomes the
// eigenvalues. Throws if an eigenvalue does not converge (it does for finite input).
void tridiagonal_ql(int n, Matrix& v, std::vector<double>& d, std::vector<double>& e) {
  auto V = [&](int i, int j) -> double& { return v[static_cast<size_t>(i) * n + j]; };
  for (int i = 1; i < n; ++i) e[i - 1] = e[i];
  e[n - 1] = 0;
  double f = 0, tst1 = 0;
  const double eps = std::ldexp(1.0, -52);
  for (int l = 0; l < n; ++l) {
    tst1 = std::max(tst1, std::abs(d[l]) + std::abs(e[l]));
    int m = l;
    while (m < n - 1 && std::abs(e[m]) > eps * tst1) ++m;
    if (m > l) {
      int iterations = 0;
      do {
        if (++iterations > 60) throw Error("eigen_symmetric: QL iteration did not converge");
        double g = d[l];
        double p = (d[l + 1] - g) / (2 * e[l]);
        double r = std::hypot(p, 1.0);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const double dl1 = d[l + 1];
        double h = g - d[l];
        for (int i = l + 2; i < n; ++i) d[i] -= h;
        f += h;
        p = d[m];
        double c = 1, c2 = 1, c3 = 1, s = 0, s2 = 0;
        const double el1 = e[l + 1];
        for (int i = m - 1; i >= l; --i) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = std::hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          for (int k = 0; k < n; ++k) {
            h = V(k, i + 1);
            V(k, i + 1) = s * V(k, i) + c * h;
            V(k, i) = c * V(k, i) - s * h;
          }
        }
        p = -s * s2 * c3 * el1 * e[l] / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (std::abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

}  // namespace

void eigen_symmetric(const Matrix& a_in, int n, std::vector<double>& w, Matrix& v) {
  if (n <= 0 || a_in.size() != static_cast<size_t>(n) * n) throw Error("eigen_symmetric: bad matrix size");
  v.assign(a_in.size(), 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) v[i * n + j] = 0.5 * (a_in[i * n + j] + a_in[j * n + i]);
  for (double x : v)
    if (!std::isfinite(x)) throw Error("eigen_symmetric: matrix has a non-finite entry");
  std::vector<double> d(n), e(n);
  tridiagonalize(n, v, d, e);
  tridiagonal_ql(n, v, d, e);
  // Finite entries near the top of the double range overflow in the squares and sums of
  // the reduction; the result is then NaN, which no caller can use.
  for (double x : d)
    if (!std::isfinite(x)) throw Error("eigen_symmetric: entries too large, the decomposition overflows double");
  for (double x : v)
    if (!std::isfinite(x)) throw Error("eigen_symmetric: entries too large, the decomposition overflows double");
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return d[x] > d[y]; });
  w.resize(n);
  Matrix sorted(v.size());
  for (int j = 0; j < n; ++j) {
    w[j] = d[order[j]];
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
