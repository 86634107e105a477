#pragma once
// Matrix products straight from quantized GGUF weights, so decode streams the bytes the
// file holds (4-8x fewer than an f32 copy). y = x·Wᵀ as in ops.h: W is `rows` rows of
// `cols` elements, row r at bytes() + r·row_bytes.
//
// Quantized types multiply by activations rounded per block to 8 bits, as llama.cpp does
// (q8_0 for the 32-element types, q8_K for the K-quants): the integer dot products are
// exact, the only extra error is that rounding, |Δ| <= Σ|w_i|·amax(x in i's block)/254.
// F16 and BF16 weights multiply f32 activations; F32 weights go to BLAS (ops.h matmul).
//
// Kernels exist per path (portable C++, AVX2, AVX-512 VNNI); `best` picks the widest this
// CPU runs (checked at run time). An unsupported weight type is a tq::Error naming it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "turboquant/gguf.h"

namespace tq {
class ThreadPool;
}

namespace tq::model {

enum class QPath { best, avx512, avx2, portable };
const char* qpath_name(QPath p);
// Compiled into this build and supported by this CPU (portable and best: always).
bool qpath_available(QPath p);

// A weight matrix in its stored type. Views the mapped file, or owns an f32 copy.
struct QMatrix {
  std::string name;  // tensor name, for messages
  gguf::GgmlType type = gguf::GgmlType::F32;
  const uint8_t* data = nullptr;
  int rows = 0, cols = 0;
  size_t row_bytes = 0;
  std::vector<float> owned;  // the f32 copy (type F32) when weights are dequantized at load

  const uint8_t* bytes() const { return owned.empty() ? data : reinterpret_cast<const uint8_t*>(owned.data()); }
  const float* f32() const { return reinterpret_cast<const float*>(bytes()); }
  bool empty() const { return rows == 0; }
};

// Whether qmatmul has kernels for a weight type (F32 included); cols must be a whole
// number of its blocks.
bool qmatmul_supports(gguf::GgmlType t);
// tq::Error naming the tensor and its type when qmatmul cannot multiply it.
void check_qmatmul_supported(const QMatrix& w);

// y[n][w.rows] = x[n][w.cols] · Wᵀ (+ bias[w.rows] when non-null); output rows split over
// `pool` (may be null).
void qmatmul(const float* x, int n, const QMatrix& w, const float* bias, float* y, ThreadPool* pool = nullptr,
             QPath path = QPath::best);

// Several products of the same x (Q, K and V; gate and up): one pass over the thread pool
// for all of them, the activations converted once. Every w has the same cols.
struct QProduct {
  const QMatrix* w;
  const float* bias;  // may be null
  float* y;           // [n][w->rows]
};
void qmatmul_many(const float* x, int n, const QProduct* products, int count, ThreadPool* pool = nullptr,
                  QPath path = QPath::best);

// Row `r` of w as f32 (embedding lookup).
void qmatrix_row(const QMatrix& w, int r, float* out);

// Rows [r0, r1) of w as f32, as the prefill tiles get them through `path` (equal to
// gguf::dequantize; for tests).
void qmatrix_rows_f32(const QMatrix& w, int r0, int r1, float* out, QPath path);

// One row's dot product with one activation vector through `path`'s kernel, for tests:
// x has w.cols floats and is quantized exactly as qmatmul quantizes it.
float qdot_row(const QMatrix& w, int r, const float* x, QPath path);

}  // namespace tq::model
