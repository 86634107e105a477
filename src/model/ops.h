#pragma once
// The elementwise and matrix operations of the forward pass, on f32 row-major data.
// Matrices follow GGUF: a weight of shape [in, out] (ggml order) is stored as `out`
// rows of `in` contiguous floats, so y = x·Wᵀ.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tq {
class ThreadPool;
}

namespace tq::model {

// y[n][out] = x[n][in] · W[out][in]ᵀ (+ bias[out] when non-null). The output columns are
// split over `pool` (may be null), each slice one single-threaded BLAS sgemm/sgemv call:
// BLAS's own threads would spin while our pool runs attention on the same cores.
void matmul(const float* x, int n, int in, const float* w, int out, const float* bias, float* y,
            ThreadPool* pool = nullptr);
// y[n][ldy] (first `rows` columns) = x[n][in] · W[rows][in]ᵀ, one single-threaded BLAS call.
void sgemm_nt(const float* x, int n, int in, const float* w, int rows, float* y, int ldy);
// Makes the BLAS library itself single-threaded (matmul parallelizes above it).
void use_single_threaded_blas();

// In place, each of `rows` rows of `width`: x = x / rms(x) * w (w non-null) or x / rms(x).
void rms_norm(float* x, int rows, int width, const float* w, float eps);
// out = x / rms(x) * w, rows of `width`, x and out distinct.
void rms_norm_to(const float* x, float* out, int rows, int width, const float* w, float eps);

// Rotary embedding tables for positions pos0..pos0+n-1: cos/sin [n][rope_dim/2].
struct RopeTable {
  int rope_dim = 0;
  std::vector<float> cos, sin;
};
// theta(p, i) = p · freq_scale · base^(−2i/rope_dim) / freq_factor[i] (factors may be null).
RopeTable make_rope_table(int pos0, int n, int rope_dim, float base, float freq_scale,
                          const float* freq_factors);
// Rotates the first rope_dim coordinates of every head of x [n][n_heads][head_dim].
// neox: pairs (i, i + rope_dim/2); otherwise adjacent pairs (2i, 2i+1).
void apply_rope(float* x, int n, int n_heads, int head_dim, const RopeTable& t, bool neox);

// e^x without libm, branch free so that the activation loops vectorize (libm's expf and
// tanhf were 11% of a Gemma 3 prefill). x = n·ln2 + r with |r| <= ln2/2; e^r by its
// Taylor series to r^7 (truncation < 0.35^8/8! = 5e-9, relative); 2^n written into the
// exponent bits. x is clamped to [-87, 88] so that 2^n stays a normal float: e^-87 and
// e^88 stand for anything beyond (the callers only add them to 1 and divide).
inline float exp_approx(float x) {
  x = std::min(88.0f, std::max(-87.0f, x));
  // Rounding by the 1.5·2^23 shift: n = round(x·log2 e), exact in float.
  constexpr float kShift = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kShift) - kShift;
  // ln 2 in two parts (the high one has trailing zero bits, so n·hi is exact).
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float two_n = std::bit_cast<float>(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
  return p * two_n;
}

// a[i] = act(gate[i]) · up[i]: SiLU (SwiGLU) or tanh-approximated GELU (GeGLU), both
// through exp_approx (relative error < 1e-6 against the libm formulas).
void swiglu(float* gate, const float* up, size_t count);
void geglu(float* gate, const float* up, size_t count);

// x = cap · tanh(x / cap)
void softcap(float* x, size_t count, float cap);

}  // namespace tq::model
