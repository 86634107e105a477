// linalg: eigen_symmetric on random symmetric matrices (n = 1, 2, 3, 16, 64, 256): V orthogonal
// (|VᵀV − I| <= 1e-10 entrywise), A V = V diag(w) (entrywise within 1e-9·‖A‖_F),
// eigenvalues descending; multiply / multiply_at_b / transpose / identity on small cases.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/linalg.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

using linalg::Matrix;

Matrix random_symmetric(Rng& rng, int n) {
  Matrix a(static_cast<size_t>(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = i; j < n; ++j) a[i * n + j] = a[j * n + i] = rng.gaussian();
  return a;
}

double frobenius(const Matrix& a) {
  double s = 0;
  for (double x : a) s += x * x;
  return std::sqrt(s);
}

void expect_eigen_decomposition(const Matrix& a, int n) {
  std::vector<double> w;
  Matrix v;
  linalg::eigen_symmetric(a, n, w, v);
  ASSERT_EQ(w.size(), static_cast<size_t>(n));
  ASSERT_EQ(v.size(), static_cast<size_t>(n) * n);
  const Matrix vtv = linalg::multiply_at_b(v, v, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) EXPECT_NEAR(vtv[i * n + j], i == j ? 1.0 : 0.0, 1e-10) << "n=" << n << " (" << i << "," << j << ")";
  const Matrix av = linalg::multiply(a, v, n);
  const double tol = 1e-9 * frobenius(a);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) EXPECT_NEAR(av[i * n + j], v[i * n + j] * w[j], tol) << "n=" << n << " (" << i << "," << j << ")";
  for (int j = 1; j < n; ++j) EXPECT_GE(w[j - 1], w[j]) << "n=" << n << " j=" << j;
  double tr = 0, sw = 0;
  for (int i = 0; i < n; ++i) {
    tr += a[i * n + i];
    sw += w[i];
  }
  EXPECT_NEAR(tr, sw, tol) << "trace = sum of eigenvalues";
}

class EigenSymmetric : public ::testing::TestWithParam<int> {};

TEST_P(EigenSymmetric, RandomMatricesDecompose) {
  const int n = GetParam();
  Rng rng(1000 + n);
  for (int rep = 0; rep < 3; ++rep) expect_eigen_decomposition(random_symmetric(rng, n), n);
}

TEST_P(EigenSymmetric, RepeatedEigenvaluesAndRankDeficient) {
  const int n = GetParam();
  Rng rng(2000 + n);
  // A = Q diag(2,2,...,0,0,...) Qᵀ via A = B Bᵀ with B of rank n/2 and a repeated spectrum.
  Matrix b(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < (n + 1) / 2; ++j) b[i * n + j] = rng.gaussian();
  const Matrix a = linalg::multiply(b, linalg::transpose(b, n), n);
  expect_eigen_decomposition(a, n);
  expect_eigen_decomposition(linalg::identity(n), n);
}

INSTANTIATE_TEST_SUITE_P(Sizes, EigenSymmetric, ::testing::Values(1, 2, 3, 16, 64, 256));

TEST(EigenSymmetricBasics, KnownSpectrumAndSymmetricPartOnly) {
  // [[2,1],[1,2]]: eigenvalues 3, 1 with eigenvectors (1,1)/√2, (1,−1)/√2.
  std::vector<double> w;
  Matrix v;
  linalg::eigen_symmetric({2, 1, 1, 2}, 2, w, v);
  EXPECT_NEAR(w[0], 3, 1e-14);
  EXPECT_NEAR(w[1], 1, 1e-14);
  EXPECT_NEAR(std::abs(v[0 * 2 + 0]), std::sqrt(0.5), 1e-14);
  EXPECT_NEAR(v[0 * 2 + 0], v[1 * 2 + 0], 1e-14);
  // A non-symmetric input is read through its symmetric part: [[2,0],[2,2]] -> [[2,1],[1,2]].
  std::vector<double> w2;
  linalg::eigen_symmetric({2, 0, 2, 2}, 2, w2, v);
  EXPECT_NEAR(w2[0], 3, 1e-14);
  EXPECT_NEAR(w2[1], 1, 1e-14);
}

TEST(EigenSymmetricBasics, BadInputThrows) {
  std::vector<double> w;
  Matrix v;
  EXPECT_THROW(linalg::eigen_symmetric({1, 2, 3}, 2, w, v), Error);
  EXPECT_THROW(linalg::eigen_symmetric({}, 0, w, v), Error);
  EXPECT_THROW(linalg::eigen_symmetric({1, NAN, NAN, 1}, 2, w, v), Error);
  EXPECT_THROW(linalg::eigen_symmetric({1, 0, 0, INFINITY}, 2, w, v), Error);
  // Finite entries whose squares overflow: an error, not NaN eigenvalues.
  EXPECT_THROW(linalg::eigen_symmetric({1e200, 3e200, 0, 3e200, 1e200, 2e200, 0, 2e200, -1e200}, 3, w, v), Error);
}

TEST(LinalgBasics, MultiplyTransposeIdentity) {
  const Matrix a = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const Matrix b = {9, 8, 7, 6, 5, 4, 3, 2, 1};
  const Matrix ab = linalg::multiply(a, b, 3);
  const Matrix expect = {30, 24, 18, 84, 69, 54, 138, 114, 90};
  for (int i = 0; i < 9; ++i) EXPECT_DOUBLE_EQ(ab[i], expect[i]) << i;
  const Matrix at = linalg::transpose(a, 3);
  const Matrix at_expect = {1, 4, 7, 2, 5, 8, 3, 6, 9};
  for (int i = 0; i < 9; ++i) EXPECT_DOUBLE_EQ(at[i], at_expect[i]) << i;
  const Matrix atb = linalg::multiply_at_b(a, b, 3);
  const Matrix atb_expect = linalg::multiply(at, b, 3);
  for (int i = 0; i < 9; ++i) EXPECT_DOUBLE_EQ(atb[i], atb_expect[i]) << i;
  const Matrix id = linalg::identity(3);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(id[i * 3 + j], i == j ? 1.0 : 0.0);
  const Matrix ai = linalg::multiply(a, id, 3), ia = linalg::multiply(id, a, 3);
  for (int i = 0; i < 9; ++i) {
    EXPECT_DOUBLE_EQ(ai[i], a[i]);
    EXPECT_DOUBLE_EQ(ia[i], a[i]);
  }
}

TEST(LinalgBasics, RandomProductsMatchNaiveSums) {
  Rng rng(77);
  const int n = 16;
  Matrix a(n * n), b(n * n);
  for (double& x : a) x = rng.gaussian();
  for (double& x : b) x = rng.gaussian();
  const Matrix ab = linalg::multiply(a, b, n);
  const Matrix atb = linalg::multiply_at_b(a, b, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0, t = 0;
      for (int k = 0; k < n; ++k) {
        s += a[i * n + k] * b[k * n + j];
        t += a[k * n + i] * b[k * n + j];
      }
      EXPECT_NEAR(ab[i * n + j], s, 1e-12);
      EXPECT_NEAR(atb[i * n + j], t, 1e-12);
    }
  const Matrix tt = linalg::transpose(linalg::transpose(a, n), n);
  EXPECT_EQ(tt, a);
}

}  // namespace
}  // namespace tq
