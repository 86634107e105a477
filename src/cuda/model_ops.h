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
// In place, x = x / rms(x) * w (QK-norm: one row per head).
void rms_norm_inplace(float* x, int rows, int width, const float* w, float eps, cudaStream_t s);
// x += o / rms(o) * w (the Gemma 3 post-norms, then the residual add).
void rms_norm_add(const float* o, float* x, int rows, int width, const float* w, float eps, cudaStream_t s);
// y[r][j] += bias[j].
void add_bias(float* y, const float* bias, int rows, int width, cudaStream_t s);
// Rotates the first rope_dim coordinates of each head of x [n][n_heads][head_dim] by
// theta = positions[t] * inv_freq[i] (inv_freq: device doubles [rope_dim / 2], the
// frequency scale and divisors folded in). neox: pairs (i, i + rope_dim/2), else (2i, 2i+1).
void rope(float* x, int n, int n_heads, int head_dim, int rope_dim, const int32_t* positions, const double* inv_freq,
          bool neox, cudaStream_t s);
// Q/K balance of one layer: k [n][n_kv][d] *= scale[kv][d], q [n][n_heads][d] /= scale of
// its KV head (h / (n_heads / n_kv)).
void qk_balance(float* q, float* k, int n, int n_heads, int n_kv_heads, int head_dim, const float* scale,
                cudaStream_t s);
// out[i] = act(gate[i]) * up[i] as f16: SiLU, or tanh GELU when gelu.
void glu_f16(const float* gate, const float* up, uint16_t* out, size_t count, bool gelu, cudaStream_t s);
// x = cap * tanh(x / cap).
void softcap(float* x, size_t count, float cap, cudaStream_t s);
// Query heads in groups of `group` per KV head, copied into groups of `padded` (>= group)
// with zero heads after them: in [n][n_kv * group][d] -> out [n][n_kv * padded][d], so
// decode_attention's supported group sizes (1, 2, 4, 8) cover any model's.
void pad_heads(const float* in, float* out, int n, int n_kv, int group, int padded, int head_dim, cudaStream_t s);
// The inverse, to f16 (the output projection's input): in [n][n_kv * padded][d] ->
// out [n][n_kv * group][d]; padded == group is a plain conversion.
void unpad_heads_f16(const float* in, uint16_t* out, int n, int n_kv, int group, int padded, int head_dim,
                     cudaStream_t s);

}  // namespace tq::cuda::model_ops
