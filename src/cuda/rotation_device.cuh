#pragma once
// Rotations on the device, written with the CPU reference's exact operation order
// (products and sums rounded one at a time with __fmul_rn/__fadd_rn, never contracted
// to FMA), so rotated coordinates are bit-identical to Rotation::forward on the CPU and
// quantized codes match the reference.
#include "device_desc.h"

namespace tq::cuda::detail {

constexpr int kTileThreads = 128;

// Sylvester-order Walsh–Hadamard butterflies on z[0..n) in shared memory, by one warp.
__device__ inline void fwht_warp(float* z, int n, int lane) {
  for (int h = 1; h < n; h <<= 1) {
    for (int p = lane; p < n / 2; p += 32) {
      const int i = (p / h) * 2 * h + p % h, j = i + h;
      const float a = z[i], b = z[j];
      z[i] = __fadd_rn(a, b);
      z[j] = __fsub_rn(a, b);
    }
    __syncwarp();
  }
}

// Row strides of the tiles in shared memory: x rows stay 16-byte aligned (the dense
// product reads them as float4 broadcasts), y rows are padded by one float so a
// thread-per-vector walk is free of bank conflicts.
template <int D>
struct TileStrides {
  static constexpr int kX = D + 4;
  static constexpr int kY = D + 1;
};

// Shared-memory floats a caller provides for streaming dense matrices (16 KB).
constexpr int kDenseChunkFloats = 4096;

// y[v] = R x[v] for v < kVecs vectors held in shared memory. 128 threads, all of which
// must call it (the dense path synchronizes the CTA); `chunk` is kDenseChunkFloats of
// 16-byte aligned shared memory, which may alias y.
template <int D, int kVecs>
__device__ void rotate_forward_tile(const RotationDesc r, const float* x, float* y, int n_vecs, float* chunk) {
  constexpr int XS = TileStrides<D>::kX, S = TileStrides<D>::kY;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  switch (r.kind) {
    case RotationKind::none:
      for (int e = tid; e < n_vecs * D; e += kTileThreads) y[(e / D) * S + e % D] = x[(e / D) * XS + e % D];
      break;
    case RotationKind::dense: {
      // Thread owns output coordinate i for a subset of vectors; y_i = sum_j Q[i][j] x_j
      // in ascending j, as DenseRotation::forward. Qᵀ streams through shared memory in
      // chunks, all loads of a chunk in flight at once and each element read from L2 once
      // per CTA.
      constexpr int kCoordThreads = D < kTileThreads ? D : kTileThreads;
      constexpr int kVecGroups = kTileThreads / kCoordThreads;
      constexpr int kCoordsPer = D / kCoordThreads;
      constexpr int kVecsPer = (kVecs + kVecGroups - 1) / kVecGroups;
      constexpr int kRows = kDenseChunkFloats / D;
      const int i0 = tid % kCoordThreads, vg = tid / kCoordThreads;
      float acc[kCoordsPer][kVecsPer];
#pragma unroll
      for (int ci = 0; ci < kCoordsPer; ++ci)
#pragma unroll
        for (int v = 0; v < kVecsPer; ++v) acc[ci][v] = 0.f;
      for (int j0 = 0; j0 < D; j0 += kRows) {
        __syncthreads();  // the previous chunk is consumed
        for (int e = tid * 4; e < kRows * D; e += kTileThreads * 4)
          *reinterpret_cast<float4*>(chunk + e) = __ldg(reinterpret_cast<const float4*>(r.matrix_t + j0 * D + e));
        __syncthreads();
        for (int jj = 0; jj < kRows; jj += 4) {
#pragma unroll
          for (int ci = 0; ci < kCoordsPer; ++ci) {
            const int i = i0 + ci * kCoordThreads;
            const float q0 = chunk[(jj + 0) * D + i], q1 = chunk[(jj + 1) * D + i];
            const float q2 = chunk[(jj + 2) * D + i], q3 = chunk[(jj + 3) * D + i];
#pragma unroll
            for (int v = 0; v < kVecsPer; ++v) {
              const int vec = vg + v * kVecGroups;
              if (vec < kVecs) {
                const float4 xv = *reinterpret_cast<const float4*>(x + vec * XS + j0 + jj);
                float a = acc[ci][v];
                a = __fadd_rn(a, __fmul_rn(q0, xv.x));
                a = __fadd_rn(a, __fmul_rn(q1, xv.y));
                a = __fadd_rn(a, __fmul_rn(q2, xv.z));
                acc[ci][v] = __fadd_rn(a, __fmul_rn(q3, xv.w));
              }
            }
          }
        }
      }
      __syncthreads();  // chunk may alias y
#pragma unroll
      for (int ci = 0; ci < kCoordsPer; ++ci)
#pragma unroll
        for (int v = 0; v < kVecsPer; ++v) {
          const int vec = vg + v * kVecGroups;
          if (vec < n_vecs) y[vec * S + i0 + ci * kCoordThreads] = acc[ci][v];
        }
      break;
    }
    case RotationKind::rht:
      // Lane holds coordinates lane + 32k; butterflies of span >= 32 stay in the lane,
      // shorter ones pair lanes through shuffles. Same sums as rotation_rht.cpp.
      for (int v = warp; v < n_vecs; v += kTileThreads / 32) {
        constexpr int K = D / 32;
        float z[K];
#pragma unroll
        for (int k = 0; k < K; ++k) z[k] = x[v * XS + r.perm[lane + 32 * k]];
        for (int round = 0; round < r.rounds; ++round) {
#pragma unroll
          for (int k = 0; k < K; ++k) z[k] = __fmul_rn(z[k], r.signs[round * D + lane + 32 * k]);
#pragma unroll
          for (int h = 1; h < 32; h <<= 1) {
            const bool upper = (lane & h) != 0;
#pragma unroll
            for (int k = 0; k < K; ++k) {
              const float other = __shfl_xor_sync(0xffffffffu, z[k], h);
              z[k] = upper ? __fsub_rn(other, z[k]) : __fadd_rn(z[k], other);
            }
          }
#pragma unroll
          for (int hk = 1; hk < K; hk <<= 1)
#pragma unroll
            for (int k = 0; k < K; ++k)
              if ((k & hk) == 0) {
                const float a0 = z[k], b0 = z[k + hk];
                z[k] = __fadd_rn(a0, b0);
                z[k + hk] = __fsub_rn(a0, b0);
              }
#pragma unroll
          for (int k = 0; k < K; ++k) z[k] = __fmul_rn(z[k], r.scale);
        }
#pragma unroll
        for (int k = 0; k < K; ++k) y[v * S + lane + 32 * k] = z[k];
      }
      break;
    case RotationKind::rotor3:
    case RotationKind::quat4:
    case RotationKind::quat4_left:
    case RotationKind::givens2:
      for (int e = tid; e < n_vecs * D; e += kTileThreads) {
        const int v = e / D, i = e % D;
        const BlockRow row = r.rows[i];
        float s = 0.f;
        for (int k = 0; k < row.size; ++k) s = __fadd_rn(s, __fmul_rn(row.m[k], x[v * XS + row.off + k]));
        y[v * S + i] = s;
      }
      break;
  }
}

// x = Rᵀ y for one vector, blockDim.x >= D threads (threads >= D only synchronize), all
// of which must call it; y and x in shared memory (y is clobbered by the Hadamard path),
// `chunk` as for the forward.
template <int D>
__device__ void rotate_inverse_vec(const RotationDesc r, float* y, float* x, float* chunk) {
  const int i = threadIdx.x;
  const bool act = i < D;
  switch (r.kind) {
    case RotationKind::none:
      if (act) x[i] = y[i];
      break;
    case RotationKind::dense: {
      // x_j = sum_k Q[k][j] y_k, ascending k, as DenseRotation::inverse; Q streams through
      // shared memory in chunks as in the forward product.
      constexpr int kRows = kDenseChunkFloats / D;
      float s = 0.f;
      for (int k0 = 0; k0 < D; k0 += kRows) {
        __syncthreads();
        for (int e = i * 4; e < kRows * D; e += blockDim.x * 4)
          *reinterpret_cast<float4*>(chunk + e) = __ldg(reinterpret_cast<const float4*>(r.matrix + k0 * D + e));
        __syncthreads();
        if (act)
          for (int kk = 0; kk < kRows; ++kk) s = __fadd_rn(s, __fmul_rn(chunk[kk * D + i], y[k0 + kk]));
      }
      if (act) x[i] = s;
      break;
    }
    case RotationKind::rht:
      for (int round = r.rounds - 1; round >= 0; --round) {
        for (int h = 1; h < D; h <<= 1) {
          float a = 0.f, b = 0.f;
          const bool lead = act && (i / h) % 2 == 0;
          if (lead) a = y[i], b = y[i + h];
          __syncthreads();
          if (lead) y[i] = __fadd_rn(a, b), y[i + h] = __fsub_rn(a, b);
          __syncthreads();
        }
        if (act) y[i] = __fmul_rn(y[i], __fmul_rn(r.scale, r.signs[round * D + i]));
        __syncthreads();
      }
      if (act) x[r.perm[i]] = y[i];
      break;
    case RotationKind::rotor3:
    case RotationKind::quat4:
    case RotationKind::quat4_left:
    case RotationKind::givens2: {
      if (!act) break;
      const BlockRow row = r.rows[i];
      const int jj = i - row.off;
      float s = 0.f;
      for (int k = 0; k < row.size; ++k) s = __fadd_rn(s, __fmul_rn(r.rows[row.off + k].m[jj], y[row.off + k]));
      x[i] = s;
      break;
    }
  }
  __syncthreads();
}

// Turns rows [0, n_vecs) of x (row stride XS) back into their RoPE frames (FrameDesc):
// row v by the turn of frame frame_of(v), with RopeFrames::Turn::apply's arithmetic
// rounded one product at a time (cos·a − sin·b, sin·a + cos·b), so turned keys are
// bit-identical to the CPU cache's. Frame 0 (the identity) leaves a row as it is. Each
// thread takes whole pairs, so no row is read after another thread wrote it; the caller
// synchronizes before and after.
template <int D, int XS, class FrameOf>
__device__ inline void turn_into_frames(const FrameDesc& fr, float* x, int n_vecs, const FrameOf& frame_of) {
  const float2* turns = reinterpret_cast<const float2*>(fr.turns);
  for (int e = threadIdx.x; e < n_vecs * D; e += blockDim.x) {
    const int v = e / D, i = e % D, j = fr.partner[i];
    if (j <= i) continue;
    const int f = frame_of(v);
    if (f <= 0) continue;
    const float2 cs = turns[static_cast<int64_t>(f) * D + i];
    float* r = x + v * XS;
    const float a = r[i], b = r[j];
    r[i] = __fsub_rn(__fmul_rn(cs.x, a), __fmul_rn(cs.y, b));
    r[j] = __fadd_rn(__fmul_rn(cs.y, a), __fmul_rn(cs.x, b));
  }
}

}  // namespace tq::cuda::detail
