#pragma once
// Small dense linear algebra for calibration (d <= 1024, double precision, row-major):
// symmetric eigen-decomposition and the matrix products the calibrated codecs need.
#include <vector>

namespace tq::linalg {

using Matrix = std::vector<double>;  // n x n, row-major

// A = V diag(w) Vᵀ for symmetric A (only the values are read as given; A need not be
// exactly symmetric, its symmetric part is used). Eigenvalues descending; column j of V
// (V[i*n + j]) is the eigenvector of w[j]. Householder + implicit QL: accurate to rounding.
// tq::Error on a non-finite entry, or when entries so large that the reduction overflows.
void eigen_symmetric(const Matrix& a, int n, std::vector<double>& w, Matrix& v);

Matrix multiply(const Matrix& a, const Matrix& b, int n);        // a · b
Matrix multiply_at_b(const Matrix& a, const Matrix& b, int n);   // aᵀ · b
Matrix transpose(const Matrix& a, int n);
Matrix identity(int n);

}  // namespace tq::linalg
