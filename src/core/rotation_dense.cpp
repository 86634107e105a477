// Haar-random orthogonal matrix: Householder QR of a Gaussian matrix, then the sign
// fix Q <- Q diag(sign(R_ii)). QR alone is not Haar (its signs depend on the input);
// with positive diag(R) the factorization is unique and Q is exactly Haar.
#include <cmath>

#include "rotations_impl.h"
#include "turboquant/error.h"
#include "turboquant/rng.h"

namespace tq {

DenseRotation::DenseRotation(int dim, uint64_t seed, bool generate)
    : Rotation(RotationKind::dense, dim, dim, seed) {
  if (!generate) return;
  const int n = dim;
  Rng rng(seed);
  std::vector<double> a(static_cast<size_t>(n) * n);  // row-major
  for (double& v : a) v = rng.gaussian();

  std::vector<double> rdiag(n);
  std::vector<std::vector<double>> hv(n);  // Householder vectors
  for (int k = 0; k < n; ++k) {
    double norm2 = 0;
    for (int i = k; i < n; ++i) norm2 += a[i * n + k] * a[i * n + k];
    const double norm = std::sqrt(norm2);
    const double x0 = a[k * n + k];
    const double alpha = x0 >= 0 ? -norm : norm;
    std::vector<double> v(n - k);
    for (int i = k; i < n; ++i) v[i - k] = a[i * n + k];
    v[0] -= alpha;
    double vn2 = 0;
    for (double t : v) vn2 += t * t;
    const double vn = std::sqrt(vn2);
    if (vn > 0)
      for (double& t : v) t /= vn;
    for (int j = k; j < n; ++j) {  // A[k:, j] -= 2 v (v . A[k:, j])
      double s = 0;
      for (int i = k; i < n; ++i) s += v[i - k] * a[i * n + j];
      for (int i = k; i < n; ++i) a[i * n + j] -= 2 * v[i - k] * s;
    }
    rdiag[k] = alpha;
    hv[k] = std::move(v);
  }
  // Q = H_0 H_1 ... H_{n-1}: apply to the identity from the right-most factor.
  std::vector<double> q(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) q[i * n + i] = 1.0;
  for (int k = n - 1; k >= 0; --k) {
    const auto& v = hv[k];
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int i = k; i < n; ++i) s += v[i - k] * q[i * n + j];
      for (int i = k; i < n; ++i) q[i * n + j] -= 2 * v[i - k] * s;
    }
  }
  q_.resize(static_cast<size_t>(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      q_[i * n + j] = static_cast<float>(rdiag[j] < 0 ? -q[i * n + j] : q[i * n + j]);
}

void DenseRotation::forward(const float* x, float* y) const {
  const int n = dim();
  for (int i = 0; i < n; ++i) {
    const float* row = &q_[static_cast<size_t>(i) * n];
    float s = 0.f;
    for (int j = 0; j < n; ++j) s += row[j] * x[j];
    y[i] = s;
  }
}

void DenseRotation::inverse(const float* y, float* x) const {
  const int n = dim();
  for (int j = 0; j < n; ++j) x[j] = 0.f;
  for (int i = 0; i < n; ++i) {
    const float* row = &q_[static_cast<size_t>(i) * n];
    const float yi = y[i];
    for (int j = 0; j < n; ++j) x[j] += row[j] * yi;
  }
}

void DenseRotation::load_params(std::span<const float> p) {
  if (p.size() != static_cast<size_t>(dim()) * dim())
    throw Error("rotation data: dense needs dim*dim parameters");
  q_.assign(p.begin(), p.end());
}

}  // namespace tq
