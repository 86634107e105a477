// The device forward pass's small kernels (model_ops.h). One block per row for the
// norms (the rows are at most a few thousand wide), a grid-stride loop for the rest.
#include <cuda_fp16.h>

#include "cuda_check.h"
#include "model_ops.h"

namespace tq::cuda::model_ops {
namespace {

constexpr int kThreads = 256;

constexpr size_t kMaxBlocks = 65536;  // grid-stride loops cover the rest

int blocks_for(size_t count) {
  const size_t b = (count + kThreads - 1) / kThreads;
  return static_cast<int>(b < kMaxBlocks ? b : kMaxBlocks);
}

// Sum over the block; every thread gets the total.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  float t = lane < warps ? partial[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

__device__ float inv_rms(const float* x, int width, float eps) {
  float ss = 0.f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) ss += x[i] * x[i];
  return rsqrtf(block_sum(ss) / width + eps);
}

__global__ void embed_kernel(const __half* table, int dim, const int32_t* tokens, float scale, float* x) {
  const __half* row = table + static_cast<size_t>(tokens[blockIdx.x]) * dim;
  float* out = x + static_cast<size_t>(blockIdx.x) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) out[i] = __half2float(row[i]) * scale;
}

__global__ void rms_norm_f16_kernel(const float* x, __half* out, int width, const float* w, float eps) {
  const float* xr = x + static_cast<size_t>(blockIdx.x) * width;
  __half* o = out + static_cast<size_t>(blockIdx.x) * width;
  const float inv = inv_rms(xr, width, eps);
  for (int i = threadIdx.x; i < width; i += blockDim.x) o[i] = __float2half_rn(xr[i] * inv * w[i]);
}

__global__ void rms_norm_inplace_kernel(float* x, int width, const float* w, float eps) {
  float* xr = x + static_cast<size_t>(blockIdx.x) * width;
  const float inv = inv_rms(xr, width, eps);
  for (int i = threadIdx.x; i < width; i += blockDim.x) xr[i] = xr[i] * inv * w[i];
}

__global__ void rms_norm_add_kernel(const float* o, float* x, int width, const float* w, float eps) {
  const float* orow = o + static_cast<size_t>(blockIdx.x) * width;
  float* xr = x + static_cast<size_t>(blockIdx.x) * width;
  const float inv = inv_rms(orow, width, eps);
  for (int i = threadIdx.x; i < width; i += blockDim.x) xr[i] += orow[i] * inv * w[i];
}

__global__ void add_bias_kernel(float* y, const float* bias, int width, size_t count) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    y[i] += bias[i % width];
}

// One thread per (token, head, pair).
__global__ void rope_kernel(float* x, int n, int n_heads, int head_dim, int rope_dim, const int32_t* positions,
                            const double* inv_freq, bool neox) {
  const int half = rope_dim / 2;
  const size_t count = size_t(n) * n_heads * half;
  for (size_t idx = blockIdx.x * size_t(blockDim.x) + threadIdx.x; idx < count; idx += size_t(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(idx % half);
    const size_t th = idx / half;  // token * n_heads + head
    const int t = static_cast<int>(th / n_heads);
    // The angle in double, as the CPU table: positions in the thousands times a
    // frequency near 1 would lose 1e-4 rad in float.
    double sn, cs;
    sincos(static_cast<double>(positions[t]) * inv_freq[i], &sn, &cs);
    const float c = static_cast<float>(cs), s = static_cast<float>(sn);
    float* v = x + th * head_dim;
    const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}

__global__ void qk_balance_kernel(float* q, float* k, int n, int n_heads, int n_kv, int head_dim, const float* scale) {
  const size_t q_count = size_t(n) * n_heads * head_dim, k_count = size_t(n) * n_kv * head_dim;
  const int group = n_heads / n_kv;
  for (size_t idx = blockIdx.x * size_t(blockDim.x) + threadIdx.x; idx < q_count + k_count;
       idx += size_t(gridDim.x) * blockDim.x) {
    if (idx < q_count) {
      const int d = static_cast<int>(idx % head_dim);
      const int h = static_cast<int>((idx / head_dim) % n_heads);
      q[idx] /= scale[(h / group) * head_dim + d];
    } else {
      const size_t j = idx - q_count;
      const int d = static_cast<int>(j % head_dim);
      const int kv = static_cast<int>((j / head_dim) % n_kv);
      k[j] *= scale[kv * head_dim + d];
    }
  }
}

__global__ void glu_kernel(const float* gate, const float* up, __half* out, size_t count, bool gelu) {
  constexpr float kTwoSqrt2OverPi = 2.0f * 0.7978845608028654f;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    // SiLU g·σ(g); tanh GELU 0.5·g·(1 + tanh(u)) = g·σ(2u), as src/model/ops.cpp.
    const float z = gelu ? kTwoSqrt2OverPi * (g + 0.044715f * g * g * g) : g;
    out[i] = __float2half_rn(g / (1.0f + expf(-z)) * up[i]);
  }
}

__global__ void softcap_kernel(float* x, size_t count, float cap) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    x[i] = cap * tanhf(x[i] / cap);
}

__global__ void pad_heads_kernel(const float* in, float* out, int n, int n_kv, int group, int padded, int head_dim) {
  const size_t count = size_t(n) * n_kv * padded * head_dim;
  for (size_t idx = blockIdx.x * size_t(blockDim.x) + threadIdx.x; idx < count; idx += size_t(gridDim.x) * blockDim.x) {
    const int d = static_cast<int>(idx % head_dim);
    const size_t head = idx / head_dim;  // token * n_kv * padded + kv * padded + j
    const int j = static_cast<int>(head % padded);
    const size_t tk = head / padded;     // token * n_kv + kv
    out[idx] = j < group ? in[(tk * group + j) * head_dim + d] : 0.f;
  }
}

__global__ void unpad_heads_kernel(const float* in, __half* out, int n, int n_kv, int group, int padded, int head_dim) {
  const size_t count = size_t(n) * n_kv * group * head_dim;
  for (size_t idx = blockIdx.x * size_t(blockDim.x) + threadIdx.x; idx < count; idx += size_t(gridDim.x) * blockDim.x) {
    const int d = static_cast<int>(idx % head_dim);
    const size_t head = idx / head_dim;  // token * n_kv * group + kv * group + j
    const int j = static_cast<int>(head % group);
    const size_t tk = head / group;
    out[idx] = __float2half_rn(in[(tk * padded + j) * head_dim + d]);
  }
}

}  // namespace

void embed_rows(const uint16_t* table, int dim, const int32_t* tokens, int n, float scale, float* x, cudaStream_t s) {
  if (n <= 0) return;
  embed_kernel<<<n, kThreads, 0, s>>>(reinterpret_cast<const __half*>(table), dim, tokens, scale, x);
  detail::check_launch("embed_kernel");
}

void rms_norm_f16(const float* x, uint16_t* out, int rows, int width, const float* w, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  rms_norm_f16_kernel<<<rows, kThreads, 0, s>>>(x, reinterpret_cast<__half*>(out), width, w, eps);
  detail::check_launch("rms_norm_f16_kernel");
}

void rms_norm_inplace(float* x, int rows, int width, const float* w, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  // Head-wide rows (64-256): a block of 64 threads keeps them busy.
  rms_norm_inplace_kernel<<<rows, width <= 128 ? 64 : 128, 0, s>>>(x, width, w, eps);
  detail::check_launch("rms_norm_inplace_kernel");
}

void rms_norm_add(const float* o, float* x, int rows, int width, const float* w, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  rms_norm_add_kernel<<<rows, kThreads, 0, s>>>(o, x, width, w, eps);
  detail::check_launch("rms_norm_add_kernel");
}

void add_bias(float* y, const float* bias, int rows, int width, cudaStream_t s) {
  const size_t count = size_t(rows) * width;
  if (count == 0) return;
  add_bias_kernel<<<blocks_for(count), kThreads, 0, s>>>(y, bias, width, count);
  detail::check_launch("add_bias_kernel");
}

void rope(float* x, int n, int n_heads, int head_dim, int rope_dim, const int32_t* positions, const double* inv_freq,
          bool neox, cudaStream_t s) {
  const size_t count = size_t(n) * n_heads * (rope_dim / 2);
  if (count == 0) return;
  rope_kernel<<<blocks_for(count), kThreads, 0, s>>>(x, n, n_heads, head_dim, rope_dim, positions, inv_freq, neox);
  detail::check_launch("rope_kernel");
}

void qk_balance(float* q, float* k, int n, int n_heads, int n_kv_heads, int head_dim, const float* scale,
                cudaStream_t s) {
  const size_t count = size_t(n) * (n_heads + n_kv_heads) * head_dim;
  if (count == 0) return;
  qk_balance_kernel<<<blocks_for(count), kThreads, 0, s>>>(q, k, n, n_heads, n_kv_heads, head_dim, scale);
  detail::check_launch("qk_balance_kernel");
}

void glu_f16(const float* gate, const float* up, uint16_t* out, size_t count, bool gelu, cudaStream_t s) {
  if (count == 0) return;
  glu_kernel<<<blocks_for(count), kThreads, 0, s>>>(gate, up, reinterpret_cast<__half*>(out), count, gelu);
  detail::check_launch("glu_kernel");
}

void softcap(float* x, size_t count, float cap, cudaStream_t s) {
  if (count == 0) return;
  softcap_kernel<<<blocks_for(count), kThreads, 0, s>>>(x, count, cap);
  detail::check_launch("softcap_kernel");
}

void pad_heads(const float* in, float* out, int n, int n_kv, int group, int padded, int head_dim, cudaStream_t s) {
  const size_t count = size_t(n) * n_kv * padded * head_dim;
  if (count == 0) return;
  pad_heads_kernel<<<blocks_for(count), kThreads, 0, s>>>(in, out, n, n_kv, group, padded, head_dim);
  detail::check_launch("pad_heads_kernel");
}

void unpad_heads_f16(const float* in, uint16_t* out, int n, int n_kv, int group, int padded, int head_dim,
                     cudaStream_t s) {
  const size_t count = size_t(n) * n_kv * group * head_dim;
  if (count == 0) return;
  unpad_heads_kernel<<<blocks_for(count), kThreads, 0, s>>>(in, reinterpret_cast<__half*>(out), n, n_kv, group,
                                                            padded, head_dim);
  detail::check_launch("unpad_heads_kernel");
}

}  // namespace tq::cuda::model_ops
