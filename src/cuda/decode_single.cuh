#pragma once
// The single-launch decode step (DecodeLaunch::single) inside the tensor-core split kernels:
// each CTA rotates its own queries (no prepare kernel), and the splits of one (sequence,
// KV head), launched as one thread-block cluster, merge through distributed shared memory
// (no reduce kernel, no workspace). Both pieces work in the kernel's dynamic shared memory
// from `base` on (where the kernel's rings and merge area start), laid out by single_smem.
#include <cooperative_groups.h>

#include "decode_args.h"
#include "decode_merge.cuh"
#include "dtype_device.cuh"
#include "rotation_device.cuh"

namespace tq::cuda::detail {

constexpr int kSingleVecs = 8;  // query heads per KV head at most
// Head sizes the single step is compiled for: single_finish gives each output coordinate
// one of the split kernels' 128 threads.
template <int D>
constexpr bool kSingleDims = D <= 128;

// Byte offsets from `base`. Prologue: the rotation's chunk (y aliases it) and the queries
// x. Epilogue: the warps' merge area (cm, cl, cacc: kWarps·G·(D + 2) floats), then this
// split's result `own` ([G][D] outputs, [G] log-sum-exps) that the other CTAs read; the
// finishing scratch (chunk, y, x) reuses the merge area once `own` is written.
struct SingleSmem {
  int x, own, total;
};

__host__ __device__ constexpr int single_max(int a, int b) { return a > b ? a : b; }

__host__ __device__ constexpr SingleSmem single_smem(int D, int G, int warps) {
  const int chunk = 4 * single_max(kDenseChunkFloats, kSingleVecs * (D + 1));
  const int prologue = chunk + 4 * kSingleVecs * (D + 4);
  const int merge = 4 * warps * G * (D + 2), finish = 4 * (kDenseChunkFloats + 2 * D);
  const int own = (single_max(merge, finish) + 15) & ~15;
  return SingleSmem{chunk, own, single_max(prologue, own + 4 * G * (D + 1))};
}

// q' = q_scale · R_k q for the CTA's G query heads, rows of stride D + 1 at the returned
// address (inside `base`). Every thread of the CTA calls it; it synchronizes the CTA.
template <int D>
__device__ const float* single_rotate_queries(const DecodeArgs& a, int b, int h, unsigned char* base) {
  constexpr int XS = TileStrides<D>::kX;
  const SingleSmem lay = single_smem(D, a.group, 1);
  float* chunk = reinterpret_cast<float*>(base);
  float* x = reinterpret_cast<float*>(base + lay.x);
  const int G = a.group, n_q = a.n_kv * G;
  for (int e = threadIdx.x; e < kSingleVecs * D; e += blockDim.x) {
    const int v = e / D, i = e % D;
    x[v * XS + i] = v < G ? load_element(a.queries, (static_cast<int64_t>(b) * n_q + h * G + v) * D + i, a.queries_dtype)
                          : 0.f;
  }
  __syncthreads();
  rotate_forward_tile<D, kSingleVecs>(a.krot[h], x, chunk, G, chunk);  // y aliases the chunk
  __syncthreads();
  return chunk;
}

// The CTA's split result from the warps' merge area (cm, cl: [warps][G]; cacc:
// [warps][G][D]) into `own`; a cluster barrier; then CTA r of the cluster merges query
// heads r, r + S, ... over all S splits (reading each CTA's `own` remotely), rotates them
// back (R_vᵀ, plus μ for an affine map) and writes them; a last barrier keeps every
// CTA's shared memory alive until the others have read it. head_dim <= 128: one thread
// per coordinate of the 128.
template <int D, int kWarps>
__device__ void single_finish(const float* cm, const float* cl, const float* cacc, const DecodeArgs& a, int b, int h,
                              unsigned char* base) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  static_assert(D <= kWarps * 32, "one thread per output coordinate");
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  const int G = a.group, tid = threadIdx.x, S = a.num_splits;
  const SingleSmem lay = single_smem(D, G, kWarps);
  float* own = reinterpret_cast<float*>(base + lay.own);
  for (int e = tid; e < G * D; e += kWarps * 32) {
    const int g = e / D, i = e % D;
    const float2 r = merge_warps<D, kWarps>(cm, cl, cacc, G, g, i);
    own[g * D + i] = r.x;
    if (i == 0) own[G * D + g] = r.y;
  }
  cluster.sync();  // every split's result is in place; the merge area is free
  float* chunk = reinterpret_cast<float*>(base);
  float* y = chunk + kDenseChunkFloats;
  float* x = y + D;
  const RotationDesc rot = a.vrot[h];
  for (int hh = static_cast<int>(cluster.block_rank()); hh < G; hh += S) {
    float l = 0.f;  // 0: no split saw a token, and the output is zero (no μ either)
    if (tid < D) {
      // Online log-sum-exp merge over the splits, in split order.
      float m = -INFINITY, o = 0.f;
      for (int s = 0; s < S; ++s) {
        const float* r = cluster.map_shared_rank(own, s);
        const float lse = r[G * D + hh];
        if (lse == -INFINITY) continue;
        if (lse > m) {
          const float f = exp2f(m - lse);
          o *= f;
          l *= f;
          m = lse;
        }
        const float w = exp2f(lse - m);
        o = fmaf(w, r[hh * D + tid], o);
        l += w;
      }
      y[tid] = l > 0.f ? o / l : 0.f;
    }
    rotate_inverse_vec<D>(rot, y, x, chunk);  // synchronizes before and after
    if (tid < D) {
      const int64_t out = ((static_cast<int64_t>(b) * a.n_kv + h) * G + hh) * D + tid;
      store_element(a.out, out, a.out_dtype, rot.mu && l > 0.f ? x[tid] + rot.mu[tid] : x[tid]);
    }
  }
  cluster.sync();  // no CTA leaves while another may still read its `own`
#else
  (void)cm, (void)cl, (void)cacc, (void)a, (void)b, (void)h, (void)base;
  __trap();  // the host launches the single step on compute capability 9.0 and newer only
#endif
}

}  // namespace tq::cuda::detail
