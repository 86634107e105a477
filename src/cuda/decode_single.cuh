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
constexpr int kSingleMaxSplits = 16;  // CTAs of a cluster at most (the non-portable size)
// Head sizes the single step is compiled for: single_finish gives each output coordinate
// one of the split kernels' 128 threads.
template <int D>
constexpr bool kSingleDims = D <= 128;

// Byte offsets from `base`. Prologue: the rotation's chunk (y aliases it) and the queries
// x. Epilogue: the warps' merge area (cm, cl, cacc: kWarps·G·(D + 2) floats), then this
// split's result `own` ([G][D] outputs, [G] log-sum-exps) that the other CTAs read; the
// finishing scratch (y, w, linv, x in single_finish) reuses the merge area once `own` is
// written.
struct SingleSmem {
  int x, own, total;
};

__host__ __device__ constexpr int single_max(int a, int b) { return a > b ? a : b; }

__host__ __device__ constexpr SingleSmem single_smem(int D, int G, int warps) {
  const int chunk = 4 * single_max(kDenseChunkFloats, kSingleVecs * (D + 1));
  const int prologue = chunk + 4 * kSingleVecs * (D + 4);
  const int merge = 4 * warps * G * (D + 2), finish = 4 * (G * D + kSingleMaxSplits * G + kSingleVecs + D);
  const int own = (single_max(merge, finish) + 15) & ~15;
  return SingleSmem{chunk, own, single_max(prologue, own + 4 * G * (D + 1))};
}

// y_i = sum_j A[i·D + j] in[v][j] for v < G and the rows i ≡ rank (mod S): this CTA's
// share of a dense product split over a cluster of S CTAs, so each reads D/S rows of A
// once (a whole product per CTA streamed 64 KB in four dependent rounds, ~15 us). 16
// threads per row take D/16 consecutive columns each; shuffles add the parts; store(v,
// i, y_i) takes the results. All 128 threads call it; it has no CTA barrier.
template <int D, class Store>
__device__ void slice_matvec(const float* __restrict__ A, const float* in, int in_stride, int G, int rank, int S,
                             Store store) {
  constexpr int kParts = 16, W = D / kParts, kRowsPerPass = 128 / kParts;
  static_assert(W % 4 == 0, "float4 column slices");
  const int p = threadIdx.x % kParts, slot = threadIdx.x / kParts;
  const int rows = (D - rank + S - 1) / S;
  for (int m0 = 0; m0 < rows; m0 += kRowsPerPass) {
    const int m = m0 + slot, i = rank + m * S;
    const bool live = m < rows;
    float4 row[W / 4];
#pragma unroll
    for (int k = 0; k < W / 4; ++k)
      row[k] = live ? __ldg(reinterpret_cast<const float4*>(A + static_cast<int64_t>(i) * D + p * W) + k)
                    : make_float4(0.f, 0.f, 0.f, 0.f);
    for (int v = 0; v < G; ++v) {
      const float* x = in + v * in_stride + p * W;
      float s = 0.f;
#pragma unroll
      for (int k = 0; k < W / 4; ++k)
        s = fmaf(row[k].x, x[4 * k], fmaf(row[k].y, x[4 * k + 1], fmaf(row[k].z, x[4 * k + 2], fmaf(row[k].w, x[4 * k + 3], s))));
#pragma unroll
      for (int off = kParts / 2; off >= 1; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if (live && p == 0) store(v, i, s);
    }
  }
}

// The rotated queries R_k q of the CTA's G query heads (unscaled: the kernels apply
// q_scale), read by (head, coordinate): rows of stride D + 1 in this CTA's shared memory
// (S == 0), or, for a dense rotation, rows of stride D spread over the cluster's shared
// memory, coordinate c at rank c % S.
struct SingleQueries {
  const float* q;
  int stride, S;
  __device__ float operator()(int g, int c) const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (S) return *cooperative_groups::this_cluster().map_shared_rank(q + g * stride + c, c % S);
#endif
    return q[g * stride + c];
  }
};

// The G query heads' rotations. A dense rotation is split over the cluster: each CTA
// computes its rows into static shared memory that stays alive (and unwritten) until
// single_finish's first cluster barrier, which every CTA reaches only after reading the
// others' rows. Other rotations run whole in each CTA (cheap), inside `base`. Every
// thread of the CTA calls it; it synchronizes the CTA (dense: the cluster).
template <int D>
__device__ SingleQueries single_rotate_queries(const DecodeArgs& a, int b, int h, unsigned char* base) {
  constexpr int XS = TileStrides<D>::kX;
  const SingleSmem lay = single_smem(D, a.group, 1);
  float* chunk = reinterpret_cast<float*>(base);
  float* x = reinterpret_cast<float*>(base + lay.x);
  const int G = a.group;
  for (int e = threadIdx.x; e < kSingleVecs * D; e += blockDim.x) {
    const int v = e / D, i = e % D;
    x[v * XS + i] = v < G ? load_element(a.queries, b * a.query_stride + (h * G + v) * D + i, a.queries_dtype)
                          : 0.f;
  }
  __syncthreads();
  const RotationDesc rot = a.krot[h];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (rot.kind == RotationKind::dense) {
    __shared__ float rows[kSingleVecs * D];
    namespace cg = cooperative_groups;
    slice_matvec<D>(rot.matrix, x, XS, G, static_cast<int>(cg::this_cluster().block_rank()), a.num_splits,
                    [&](int v, int i, float y) { rows[v * D + i] = y; });
    cg::this_cluster().sync();  // every rank's rows are in place
    return SingleQueries{rows, D, a.num_splits};
  }
#endif
  rotate_forward_tile<D, kSingleVecs>(rot, x, chunk, G, chunk);  // y aliases the chunk
  __syncthreads();
  return SingleQueries{chunk, D + 1, 0};
}

// The CTA's split result from the warps' merge area (cm, cl: [warps][G]; cacc:
// [warps][G][D]) into `own`; a cluster barrier; then CTA r merges heads over all S
// splits (reading each CTA's `own` remotely) and rotates back (R_vᵀ, plus μ for an affine
// map) its share: for a dense rotation every head, of which it computes rows r, r + S,
// ...; else whole heads r, r + S, ...; a last barrier keeps every CTA's shared memory alive until the
// others have read it. head_dim <= 128: one thread per coordinate of the 128.
template <int D, int kWarps>
__device__ void single_finish(const float* cm, const float* cl, const float* cacc, const DecodeArgs& a, int b, int h,
                              unsigned char* base) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  static_assert(D <= kWarps * 32, "one thread per output coordinate");
  static_assert(kSingleMaxSplits * kSingleVecs <= kWarps * 32, "one thread per (split, head) log-sum-exp");
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
  // Merged heads: y = sum_s w_s o_s / sum_s w_s, w_s = 2^(lse_s - max). Each remote
  // value is its own load, all S of an element in flight at once (a loop over the splits
  // had waited for each, one round trip through the cluster at a time).
  float* y = reinterpret_cast<float*>(base);  // [G][D] (dense) or [D], normalized
  float* w = y + G * D;                        // [S][G]: log-sum-exps, then weights
  float* linv = w + S * G;                     // [G]: 1 / sum of weights, 0 when no token
  float* x = linv + kSingleVecs;               // [D]: one head rotated back (not dense)
  if (tid < S * G) w[tid] = cluster.map_shared_rank(own, tid / G)[G * D + tid % G];
  __syncthreads();
  if (tid < G) {
    float m = -INFINITY;
    for (int s = 0; s < S; ++s) m = fmaxf(m, w[s * G + tid]);
    float l = 0.f;
    for (int s = 0; s < S; ++s) {
      const float f = w[s * G + tid] == -INFINITY ? 0.f : exp2f(w[s * G + tid] - m);
      w[s * G + tid] = f;
      l += f;
    }
    linv[tid] = l > 0.f ? 1.f / l : 0.f;
  }
  __syncthreads();
  // Merged output element e = g·D + i.
  auto merged = [&](int e) {
    const int g = e / D;
    float v[kSingleMaxSplits];
#pragma unroll
    for (int s = 0; s < kSingleMaxSplits; ++s)
      v[s] = s < S && w[s * G + g] != 0.f ? cluster.map_shared_rank(own, s)[e] : 0.f;
    float o = 0.f;
#pragma unroll
    for (int s = 0; s < kSingleMaxSplits; ++s)
      if (s < S) o = fmaf(w[s * G + g], v[s], o);
    return o * linv[g];
  };
  const RotationDesc rot = a.vrot[h];
  const int rank = static_cast<int>(cluster.block_rank());
  const int64_t out0 = (static_cast<int64_t>(b) * a.n_kv + h) * G * D;
  // Affine map: x = P⁻¹ y + μ; an empty sequence (linv 0) stays a zero output.
  auto store = [&](int g, int i, float v) {
    store_element(a.out, out0 + g * D + i, a.out_dtype, rot.mu && linv[g] > 0.f ? v + rot.mu[i] : v);
  };
  if (rot.kind == RotationKind::dense) {  // every head merged here, then this CTA's rows
    for (int e = tid; e < G * D; e += kWarps * 32) y[e] = merged(e);
    __syncthreads();
    slice_matvec<D>(rot.matrix_t, y, D, G, rank, S, store);
  } else {  // whole heads rank, rank + S, ...: cheap rotations (merging every head here cost more)
    for (int g = rank; g < G; g += S) {
      if (tid < D) y[tid] = merged(g * D + tid);
      __syncthreads();  // the Hadamard butterflies read other threads' coordinates
      rotate_inverse_vec<D>(rot, y, x, nullptr);  // synchronizes after
      if (tid < D) store(g, tid, x[tid]);
    }
  }
  cluster.sync();  // no CTA leaves while another may still read its `own`
#else
  (void)cm, (void)cl, (void)cacc, (void)a, (void)b, (void)h, (void)base;
  __trap();  // the host launches the single step on compute capability 9.0 and newer only
#endif
}

}  // namespace tq::cuda::detail
