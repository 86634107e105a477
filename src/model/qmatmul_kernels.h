#pragma once
// The row kernels behind qmatmul (qmatmul.h): activation blocks, one dot-product function
// per weight type, and one table of them per path. Every path computes the same integer
// block sums; they differ only in float summation order.
#include <cstdint>

namespace tq::model::qk {

constexpr int kQ8 = 32;    // activation block of the 32-element weight types
constexpr int kQ8K = 256;  // activation block of the K-quants

// x ≈ d·q, q in [-127, 127]; s = d·Σq (the offset terms of Q4_0/Q4_1/Q5_x use it).
struct Q8Block {
  float d, s;
  int8_t qs[kQ8];
};
// x ≈ d·q; bsums[i] = Σ q over elements 16i..16i+15 (the K-quants' min/offset terms).
struct Q8KBlock {
  float d;
  int16_t bsums[kQ8K / 16];
  int8_t qs[kQ8K];
};

// Round to the nearest of 255 levels per block (d = amax/127), the same on every path.
void quantize_q8(const float* x, int cols, Q8Block* out);
void quantize_q8k(const float* x, int cols, Q8KBlock* out);

// One weight row (`cols` elements, raw GGUF bytes) times one activation vector: Q8Block*
// for the 32-element types, Q8KBlock* for the K-quants, float* for F16/BF16.
using RowDot = float (*)(const uint8_t* w, const void* x, int cols);

struct DotTable {
  RowDot f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k;
};

// Weight rows to f32 for the prefill tiles (qmatmul dequantizes, then calls BLAS): the
// same per-element float operations as gguf::dequantize, only vectorized. The portable
// path has none (gguf::dequantize is its own).
using RowToF32 = void (*)(const uint8_t* w, int cols, float* out);

struct ToF32Table {
  RowToF32 q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k;
};

const DotTable& portable_dots();
// nullptr when this build lacks the path (the CPU check is the caller's).
const DotTable* avx2_dots();
const DotTable* avx512_dots();
const ToF32Table* avx2_to_f32();
const ToF32Table* avx512_to_f32();

}  // namespace tq::model::qk
