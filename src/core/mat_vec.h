#pragma once
// y = M x for the calibrated codecs' dim x dim maps (one product per encoded or decoded
// token). Kept as the columns of M (Mᵀ row-major) so that lanes = outputs: every y[i]
// is still 0 + M[i][0] x[0] + M[i][1] x[1] + ... in order, rounding as the row-major
// loop does (tq_core builds with -ffp-contract=off; the records' bytes depend on it),
// while the compiler runs 16 outputs per vector instead of one chain per row.
#include <vector>

namespace tq::detail {

// Mᵀ of a row-major d x d matrix (the argument mat_vec_cols takes).
std::vector<float> columns_of(const std::vector<float>& m, int d);

// y = M x, cols = columns_of(M). y must not overlap x or cols.
void mat_vec_cols(const float* cols, int d, const float* x, float* y);

}  // namespace tq::detail
