#pragma once
// The elementwise and row kernels of the device forward pass (model_ops.cu), as host
// launchers on a stream. Layouts follow src/model/ops.h: row-major, rows of `width`;
// f16 buffers (uint16_t bits) are the GEMM inputs. Each has a plain C++ reference in
// src/model/ops.cpp that tests/cuda/test_cuda_model_ops.cpp compares it with.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace tq::cuda::model_ops {

// x[t][i] = table[tokens[t]][i] * scale (table: f16 [vocab][dim]).
void embed_rows(const uint16_t* table, int dim, const int32_t* tokens, int n, float scale, float* x, cudaStream_t s);
// out = x / rms(x) * w as f16, rows of `width`.
void rms_norm_f16(const float* x, uint16_t* out, int rows, int width, const float* w, float eps, cudaStream_t s);
// x += o / rms(o) * w (the Gemma 3 post-norms, then the residual add).
void rms_norm_add(const float* o, float* x, int rows, int width, const float* w, float eps, cudaStream_t s);
// y[r][j] += bias[j].
void add_bias(float* y, const float* bias, int rows, int width, cudaStream_t s);
// What qk_prepare does to a layer's query and key heads, in the CPU runner's order.
struct QkPrepare {
  int n_q = 0, n_kv = 0, head_dim = 0;      // query heads (a multiple of n_kv), KV heads
  const float* q_norm = nullptr;            // QK-norm weights [head_dim] (null: none)
  const float* k_norm = nullptr;
  float eps = 0.f;
  // RoPE on the first rope_dim coordinates of each head by theta = positions[t] *
  // inv_freq[i] (device doubles [rope_dim / 2], frequency scale and divisors folded in);
  // neox: pairs (i, i + rope_dim/2), else (2i, 2i+1).
  int rope_dim = 0;
  const int32_t* positions = nullptr;
  const double* inv_freq = nullptr;
  bool neox = false;
  // Q/K balance [n_kv][head_dim] (null: none): k *= scale, q /= its KV head's scale
  // (query head h belongs to KV head h / (n_q / n_kv)).
  const float* balance = nullptr;
};
// Row t of x (row_stride floats apart) starts with n_q query heads then n_kv key heads of
// head_dim: each gets QK-norm, RoPE and balance in one launch (one warp per head).
void qk_prepare(float* x, int n, int64_t row_stride, const QkPrepare& p, cudaStream_t s);
// Row r of gate_up is [gate (width) | up (width)]: out[r][i] = act(gate) * up as f16,
// SiLU or tanh GELU when gelu.
void glu_f16(const float* gate_up, uint16_t* out, int rows, int width, bool gelu, cudaStream_t s);
// x = cap * tanh(x / cap).
void softcap(float* x, size_t count, float cap, cudaStream_t s);
}  // namespace tq::cuda::model_ops
