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

// One warp per (row, head) of the first n_q + n_kv heads of each row (queries, then
// keys), in the CPU runner's order: QK-norm, RoPE, Q/K balance. Each phase works on the
// head in global memory; __syncwarp orders a warp's accesses between them.
__global__ void qk_prepare_kernel(float* x, int n, int64_t stride, QkPrepare p) {
  const int lane = threadIdx.x & 31;
  const int64_t item = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int heads = p.n_q + p.n_kv;
  if (item >= static_cast<int64_t>(n) * heads) return;  // uniform over the warp
  const int t = static_cast<int>(item / heads), h = static_cast<int>(item % heads);
  const bool key = h >= p.n_q;
  float* v = x + t * stride + static_cast<int64_t>(h) * p.head_dim;
  const float* norm = key ? p.k_norm : p.q_norm;
  if (norm) {
    float ss = 0.f;
    for (int i = lane; i < p.head_dim; i += 32) ss += v[i] * v[i];
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float inv = rsqrtf(ss / p.head_dim + p.eps);
    for (int i = lane; i < p.head_dim; i += 32) v[i] = v[i] * inv * norm[i];
    __syncwarp();
  }
  const int half = p.rope_dim / 2;
  for (int i = lane; i < half; i += 32) {
    // The angle in double, as the CPU table: positions in the thousands times a
    // frequency near 1 would lose 1e-4 rad in float.
    double sn, cs;
    sincos(static_cast<double>(p.positions[t]) * p.inv_freq[i], &sn, &cs);
    const float c = static_cast<float>(cs), s = static_cast<float>(sn);
    const int a = p.neox ? i : 2 * i, b = p.neox ? i + half : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
  if (p.balance) {  // k *= s, q /= s of its KV head
    __syncwarp();
    const float* sc = p.balance + static_cast<int64_t>(key ? h - p.n_q : h / (p.n_q / p.n_kv)) * p.head_dim;
    for (int i = lane; i < p.head_dim; i += 32) v[i] = key ? v[i] * sc[i] : v[i] / sc[i];
  }
}

// Row r of gu is [gate (width) | up (width)].
__global__ void glu_kernel(const float* gu, __half* out, int width, size_t count, bool gelu) {
  constexpr float kTwoSqrt2OverPi = 2.0f * 0.7978845608028654f;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    const float* row = gu + (i / width) * 2 * width;
    const float g = row[i % width], u = row[width + i % width];
    // SiLU g·σ(g); tanh GELU 0.5·g·(1 + tanh(u)) = g·σ(2u), as src/model/ops.cpp.
    const float z = gelu ? kTwoSqrt2OverPi * (g + 0.044715f * g * g * g) : g;
    out[i] = __float2half_rn(g / (1.0f + expf(-z)) * u);
  }
}

__global__ void softcap_kernel(float* x, size_t count, float cap) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    x[i] = cap * tanhf(x[i] / cap);
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

void qk_prepare(float* x, int n, int64_t row_stride, const QkPrepare& p, cudaStream_t s) {
  const int64_t warps = static_cast<int64_t>(n) * (p.n_q + p.n_kv);
  if (warps == 0) return;
  constexpr int kWarps = kThreads / 32;
  qk_prepare_kernel<<<static_cast<unsigned>((warps + kWarps - 1) / kWarps), kThreads, 0, s>>>(x, n, row_stride, p);
  detail::check_launch("qk_prepare_kernel");
}

void glu_f16(const float* gate_up, uint16_t* out, int rows, int width, bool gelu, cudaStream_t s) {
  const size_t count = size_t(rows) * width;
  if (count == 0) return;
  glu_kernel<<<blocks_for(count), kThreads, 0, s>>>(gate_up, reinterpret_cast<__half*>(out), width, count, gelu);
  detail::check_launch("glu_kernel");
}

void softcap(float* x, size_t count, float cap, cudaStream_t s) {
  if (count == 0) return;
  softcap_kernel<<<blocks_for(count), kThreads, 0, s>>>(x, count, cap);
  detail::check_launch("softcap_kernel");
}

}  // namespace tq::cuda::model_ops
