// Fused split-K decode attention over the compressed paged cache (flash-decoding):
//   1. prepare: q' = scale·log2(e) · R_k q, once per query head (the K codec's rotation
//      of the head's KV head);
//   2. split:   one CTA per (context split, KV head, sequence) serves the G query heads
//      of that KV head. Each warp streams tiles of T = 32/G tokens of K and V records
//      through a kStages-deep cp.async ring, scores the packed codes directly (lane owns
//      D/32 coordinates; a transpose-reduce across the warp leaves one (token, head)
//      score per lane), runs an online base-2 softmax and accumulates values in the V
//      codec's rotated space. Warps merge by log-sum-exp; the CTA writes its partial
//      output and log-sum-exp;
//   3. reduce:  merges the splits and rotates the output back once (R_vᵀ).
// Keys in RoPE frames (calibrated presets, rope_frame.h): step 1 prepares one q' per frame
// (the query turned back by the frame's start first) and its affine constant q·μ, and
// step 2 scores each tile with its frame's (a tile never straddles a frame).
// The tensor-core split kernels can also run the step as one launch (DecodeLaunch::single,
// decode_single.cuh): each CTA rotates its queries, and the splits merge inside a cluster.
// The split count depends only on (batch, KV heads, max_seq_len), so a decode step can
// be captured in a CUDA graph.
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "copy_async.cuh"
#include "cuda_check.h"
#include "decode_args.h"
#include "decode_merge.cuh"
#include "device_cache_impl.h"
#include "env_override.h"
#include "dtype_device.cuh"
#include "pdl.cuh"
#include "record_decode.cuh"
#include "record_grouped.cuh"
#include "rotation_device.cuh"
#include "split_work.cuh"
#include "turboquant/head_dim.h"

namespace tq::cuda {

namespace detail {

namespace {

constexpr int kWarps = 4;
constexpr int kStages = 4;
constexpr int kSlack = 16;  // bit_window may read 8 bytes past a tile
constexpr int kPrepVecs = 8;  // query heads per KV head at most
constexpr unsigned kFull = 0xffffffffu;


__host__ __device__ constexpr int round16(int x) { return (x + 15) & ~15; }

struct SplitSmem {
  int kbuf, vbuf, stage_area, combine_area, total;
};

// Floats of a side's level table in shared memory: a per-lane copy of the mse codebook,
// or a calibrated codec's lane parts and whole table (log factors, every codebook, one copy).
__host__ __device__ inline int lut_floats(const CodecDesc& c) {
  return c.kind == QuantKind::grouped ? grouped_lut_floats(c) : kMaxLevels * 32;
}

__host__ __device__ inline SplitSmem split_smem(int D, int G, int rbk, int rbv, int lk, int lv) {
  SplitSmem s;
  const int T = 32 / G;
  s.kbuf = round16(T * rbk + kSlack);
  s.vbuf = round16(T * rbv + kSlack);
  s.stage_area = kWarps * kStages * (s.kbuf + s.vbuf);
  s.combine_area = static_cast<int>(sizeof(float)) * kWarps * G * (D + 2);
  const int head = static_cast<int>(sizeof(float)) * (lk + lv + kWarps * 32);
  s.total = head + (s.stage_area > s.combine_area ? s.stage_area : s.combine_area);
  return s;
}

// One step of the warp transpose-reduce: lanes with bit S set keep the upper half of
// the 2S live partial sums, the others the lower half, each adding its partner's copy.
// S is a template argument so every index into p stays a compile-time constant (a
// run-time index would move the array to local memory).
template <int S>
__device__ inline void transpose_reduce_step(float* p, int lane) {
  const bool upper = (lane & S) != 0;
#pragma unroll
  for (int i = 0; i < S; ++i) {
    const float send = upper ? p[i] : p[i + S];
    const float keep = upper ? p[i + S] : p[i];
    p[i] = keep + __shfl_xor_sync(kFull, send, S);
  }
}

template <int D>
__global__ void __launch_bounds__(kTileThreads) decode_prepare_kernel(const __grid_constant__ DecodeArgs a) {
  constexpr int XS = TileStrides<D>::kX, S = TileStrides<D>::kY;
  __shared__ __align__(16) float x[kPrepVecs * XS];
  __shared__ float y[kPrepVecs * S];
  __shared__ __align__(16) float chunk[kDenseChunkFloats];
  pdl_trigger();  // the split kernel may launch and start its loads; it waits for q_rot
  // blockIdx.z: slice + D/32 · frame (keys in RoPE frames: one query set per frame).
  const int h = blockIdx.x, b = blockIdx.y, slice = blockIdx.z % (D / 32), frame = blockIdx.z / (D / 32);
  const int G = a.group, n_q = a.n_kv * a.group;
  const RotationDesc rot = a.krot[h];
  const bool dense = rot.kind == RotationKind::dense;
  if (!dense && slice > 0) return;  // only the dense product is spread over slices
  if (frame > 0) {  // a frame the row does not read (past its end, before its window) is skipped
    const int len = a.seq_lens[b], lo = a.window > 0 ? max(0, len - a.window) : 0;
    if (frame > (len - 1) / a.frames.range || frame < lo / a.frames.range) return;
  }
  // Dense: rows [32·slice, 32·slice + 32) of Q, a quad of threads per row, float4 column
  // j4 = part + 4c to part `part`. The slice is loaded before the queries so both loads
  // are in flight together (the CPU reference's summation order is not needed here:
  // attention is checked to 1e-3).
  constexpr int MP = D / 16;  // float4s prefetched: the whole slice row, d = 256 included (64 registers)
  const int row = slice * 32 + threadIdx.x / 4, part = threadIdx.x % 4;
  const float4* m = reinterpret_cast<const float4*>(rot.matrix + static_cast<int64_t>(row) * D);
  float4 mrow[MP];
  if (dense) {
#pragma unroll
    for (int c = 0; c < MP; ++c) mrow[c] = __ldg(m + part + 4 * c);
  }
  for (int e = threadIdx.x; e < kPrepVecs * D; e += kTileThreads) {
    const int v = e / D, i = e % D;
    x[v * XS + i] = v < G ? load_element(a.queries, b * a.query_stride + (h * G + v) * D + i, a.queries_dtype) : 0.f;
  }
  __syncthreads();
  if (frame > 0) {  // turned back by the frame's start first, as the keys were (attention.cpp)
    turn_into_frames<D, XS>(a.frames, x, G, [&](int) { return frame; });
    __syncthreads();
  }
  const int64_t out0 = frame * a.q_frame_floats + (static_cast<int64_t>(b) * n_q + h * G) * D;
  if (a.q_bias && slice == 0) {  // q_f·μ, a warp per query head
    const int lane = threadIdx.x & 31;
    for (int v = threadIdx.x >> 5; v < G; v += kTileThreads / 32) {
      float c = 0.f;
      if (rot.mu)
        for (int i = lane; i < D; i += 32) c = fmaf(x[v * XS + i], rot.mu[i], c);
#pragma unroll
      for (int off = 16; off >= 1; off >>= 1) c += __shfl_xor_sync(kFull, c, off);
      if (lane == 0) a.q_bias[out0 / D + v] = c * a.q_scale;
    }
  }
  if (dense) {
    float acc[kPrepVecs];
#pragma unroll
    for (int v = 0; v < kPrepVecs; ++v) acc[v] = 0.f;
#pragma unroll
    for (int c = 0; c < D / 16; ++c) {
      const int j4 = part + 4 * c;
      const float4 q = c < MP ? mrow[c < MP ? c : 0] : __ldg(m + j4);
#pragma unroll
      for (int v = 0; v < kPrepVecs; ++v)
        if (v < G) {
          const float4 xv = *reinterpret_cast<const float4*>(x + v * XS + 4 * j4);
          acc[v] = fmaf(q.x, xv.x, fmaf(q.y, xv.y, fmaf(q.z, xv.z, fmaf(q.w, xv.w, acc[v]))));
        }
    }
#pragma unroll
    for (int v = 0; v < kPrepVecs; ++v) {
      acc[v] += __shfl_xor_sync(kFull, acc[v], 1);
      acc[v] += __shfl_xor_sync(kFull, acc[v], 2);
      if (part == 0 && v < G) a.q_rot[out0 + v * D + row] = acc[v] * a.q_scale;
    }
    return;
  }
  rotate_forward_tile<D, kPrepVecs>(rot, x, y, G, chunk);
  __syncthreads();
  for (int e = threadIdx.x; e < G * D; e += kTileThreads) {
    const int v = e / D, i = e % D;
    a.q_rot[out0 + v * D + i] = y[v * S + i] * a.q_scale;
  }
}

// Register cap that lets five CTAs share an SM where the compiler fits it without
// spilling (checked with -Xptxas -v); elsewhere the compiler's own choice.
template <int D, int G, bool kExt = false>
constexpr int kSplitMinBlocks = (G >= 4 && D <= 128 && !(D == 128 && G == 8)) ? (kExt && D == 128 ? 4 : 5) : 1;

// kExt: calibrated (grouped) sides and sink tokens. A separate instantiation, so the
// kernels of every other codec keep their registers (with both paths compiled in, the
// d = 256 kernels spilled); at d = 128 it gets four CTAs' registers instead of five (under
// five's cap it spilled 80 bytes).
template <int D, int G, bool kExt>
__global__ void __launch_bounds__(kWarps * 32, kSplitMinBlocks<D, G, kExt>) decode_split_kernel(const __grid_constant__ DecodeArgs a) {
  constexpr int C = D / 32, T = 32 / G;
  extern __shared__ __align__(16) unsigned char smem[];
  const int lk = kExt ? lut_floats(a.kc) : kMaxLevels * 32, lv = kExt ? lut_floats(a.vc) : kMaxLevels * 32;
  float* lutk = reinterpret_cast<float*>(smem);
  float* lutv = lutk + lk;
  float* pbuf = lutv + lv;
  unsigned char* area = reinterpret_cast<unsigned char*>(pbuf + kWarps * 32);

  const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int rbk = a.kc.record_bytes, rbv = a.vc.record_bytes;
  const SplitSmem lay = split_smem(D, G, rbk, rbv, lk, lv);
  unsigned char* ring = area + warp * kStages * (lay.kbuf + lay.vbuf);

  auto fill_lut = [&](const CodecDesc& c, float* lut) {
    if (kExt && c.kind == QuantKind::grouped) return fill_grouped_lut<C>(c, lut, tid, kWarps * 32);
    for (int e = tid; e < kMaxLevels * 32; e += kWarps * 32) {
      const int level = e >> 5, l = e & 31;
      lut[e] = l * C < c.n_hi ? c.levels_hi[level] : c.levels_lo[level];
    }
  };
  fill_lut(a.kc, lutk);
  fill_lut(a.vc, lutv);

  const int64_t qrow = static_cast<int64_t>(b) * a.n_kv * G + h * G;
  const SplitWork work = split_work(a, b, split, warp, kWarps, T);
  const int seq_len = work.seq_len, lo = work.lo, tb = work.tb, my_count = work.my_count;
  // Keys in RoPE frames (kExt only): the query set of the frame of the warp's tile,
  // reloaded when a tile starts a new frame (tiles never straddle one).
  const bool framed = kExt && a.frames.range > 0;
  int q_frame = framed && my_count > 0 ? frame_of(a, (tb + warp) * T) : 0;
  float q[G][C];
  float bias = 0.f;  // the frame's q_f·μ of head lane % G (the head of the lane's score)
  auto load_q = [&]() {
    const float* qf = a.q_rot + q_frame * a.q_frame_floats;
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int c = 0; c < C; ++c) q[g][c] = qf[(qrow + g) * D + lane * C + c];
    if (framed) bias = a.q_bias[q_frame * (a.q_frame_floats / D) + qrow + lane % G];
  };
  load_q();
  const int32_t* table = a.block_tables + static_cast<int64_t>(b) * a.max_blocks;
  SinkRows sinks;
  if (kExt) sinks = sink_rows_of(a, b, h, D, lane * C);
  const int n_sinks = sinks.count;
  const int64_t sink_row = sinks.row;
  // Only the first tile can hold sinks: a warp-uniform test per token there.
  auto sink_values = [&](const float* store, int t, float* v) {
    const float* r = store + sink_row + static_cast<int64_t>(t) * a.n_kv * D;
#pragma unroll
    for (int c = 0; c < C; ++c) v[c] = r[c];
    return 1.f;
  };
  const int tiles_per_block = a.block_tokens / T;

  auto issue = [&](int k) {
    const int ti = tb + warp + k * kWarps;
    if (k < my_count) {
      const int64_t block = table[ti / tiles_per_block];
      const int64_t first = static_cast<int64_t>(h) * a.block_tokens + (ti % tiles_per_block) * T;
      unsigned char* kd = ring + (k % kStages) * (lay.kbuf + lay.vbuf);
      const uint32_t kd_sa = static_cast<uint32_t>(__cvta_generic_to_shared(kd));
      copy_tile_async<kExt>(kd_sa, a.kpool + block * a.kblock_bytes + first * rbk, T * rbk, lane);
      copy_tile_async<kExt>(kd_sa + lay.kbuf, a.vpool + block * a.vblock_bytes + first * rbv, T * rbv, lane);
    }
    cp_async_commit();  // empty groups keep the wait count uniform
  };

  __syncthreads();  // look-up tables ready
  const bool k_mse = a.kc.kind == QuantKind::mse, v_mse = a.vc.kind == QuantKind::mse;
  const bool k_grouped = kExt && a.kc.kind == QuantKind::grouped, v_grouped = kExt && a.vc.kind == QuantKind::grouped;
  float m_run = -INFINITY, l_run = 0.f;
  float acc[G][C];
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int c = 0; c < C; ++c) acc[g][c] = 0.f;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);
  for (int k = 0; k < my_count; ++k) {
    issue(k + kStages - 1);
    cp_async_wait<kStages - 1>();
    __syncwarp();
    const unsigned char* ks = ring + (k % kStages) * (lay.kbuf + lay.vbuf);
    const unsigned char* vs = ks + lay.kbuf;
    const int tok0 = (tb + warp + k * kWarps) * T;
    if (framed && frame_of(a, tok0) != q_frame) {
      q_frame = frame_of(a, tok0);
      load_q();
    }

    // Partial scores of the lane's coordinates, P[j*G + g] for token j, head g.
    float P[32];
    auto score_tile = [&](const auto& decode) {
#pragma unroll
      for (int j = 0; j < T; ++j) {
        float v[C];
        float sc = decode(ks + j * rbk, v);
        if (kExt && tok0 + j < n_sinks) sc = sink_values(a.sink_k, tok0 + j, v);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          float s = 0.f;
#pragma unroll
          for (int c = 0; c < C; ++c) s = fmaf(q[g][c], v[c], s);
          P[j * G + g] = s * sc;
        }
      }
    };
    if (k_mse)
      score_tile(MseLaneDecoder<C>(a.kc, lutk, lane));
    else if (kExt && k_grouped)
      score_tile(GroupedLaneDecoder<C>(lutk, lane));
    else
      score_tile(AnyLaneDecoder<C>{a.kc, lutk, lane});
    // Transpose-reduce: 31 shuffles leave lane l with the full sum of P[l].
    transpose_reduce_step<16>(P, lane);
    transpose_reduce_step<8>(P, lane);
    transpose_reduce_step<4>(P, lane);
    transpose_reduce_step<2>(P, lane);
    transpose_reduce_step<1>(P, lane);
    // Bit j: token tok0 + j lies in [lo, seq_len). One register for both limits: only the
    // window's first tile and the sequence's last one clear bits.
    const int n_valid = min(T, seq_len - tok0), j_lo = lo - tok0;
    const uint32_t rows = (n_valid >= 32 ? ~0u : (1u << n_valid) - 1u) & (j_lo > 0 ? ~0u << j_lo : ~0u);
    const float score = (rows >> (lane / G)) & 1u ? P[0] + bias : -INFINITY;
    float mt = score;
#pragma unroll
    for (int off = G; off < 32; off <<= 1) mt = fmaxf(mt, __shfl_xor_sync(kFull, mt, off));
    const float m_new = fmaxf(m_run, mt);  // finite: every tile holds a position in [lo, seq_len)
    const float alpha = exp2f(m_run - m_new);
    const float p = exp2f(score - m_new);
    l_run = l_run * alpha + p;
    m_run = m_new;
    pbuf[warp * 32 + lane] = p;
    __syncwarp();
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float ag = __shfl_sync(kFull, alpha, g);
#pragma unroll
      for (int c = 0; c < C; ++c) acc[g][c] *= ag;
    }
    auto accumulate_tile = [&](const auto& decode) {
#pragma unroll
      for (int j = 0; j < T; ++j) {
        if ((rows >> j) & 1u) {
          float v[C];
          float sc = decode(vs + j * rbv, v);
          if (kExt && tok0 + j < n_sinks) sc = sink_values(a.sink_v, tok0 + j, v);
#pragma unroll
          for (int g = 0; g < G; ++g) {
            const float w = pbuf[warp * 32 + j * G + g] * sc;
#pragma unroll
            for (int c = 0; c < C; ++c) acc[g][c] = fmaf(w, v[c], acc[g][c]);
          }
        }
      }
    };
    if (v_mse)
      accumulate_tile(MseLaneDecoder<C>(a.vc, lutv, lane));
    else if (kExt && v_grouped)
      accumulate_tile(GroupedLaneDecoder<C>(lutv, lane));
    else
      accumulate_tile(AnyLaneDecoder<C>{a.vc, lutv, lane});
    __syncwarp();
  }
  cp_async_wait<0>();

  float l_sum = l_run;
#pragma unroll
  for (int off = G; off < 32; off <<= 1) l_sum += __shfl_xor_sync(kFull, l_sum, off);
  __syncthreads();  // rings are free: reuse them to merge the warps
  float* cm = reinterpret_cast<float*>(area);
  float* cl = cm + kWarps * G;
  float* cacc = cl + kWarps * G;
  if (lane < G) {
    cm[warp * G + lane] = m_run;
    cl[warp * G + lane] = l_sum;
  }
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int c = 0; c < C; ++c) cacc[(warp * G + g) * D + lane * C + c] = acc[g][c];
  __syncthreads();
  write_split_partials<D, kWarps>(cm, cl, cacc, G, a, qrow, split, tid);
}

constexpr int kMaxSplits = 1024;
constexpr int kReduceThreads = 1024;

// Merges the splits of one query head by log-sum-exp and rotates the result back. The
// D·R threads (R = 1024 / D) each sum every R-th split of one coordinate, so many
// partial rows are in flight at once. A dense inverse rotation is split over the
// a.v_slices = D/64 CTAs of the head (blockIdx.z): each merges the whole row again (cheap)
// and computes 64 output coordinates, 16 threads per coordinate, from its 64 rows of Qᵀ
// loaded before the wait. (One CTA reading all of Qᵀ took 14.3 us at d = 256 against
// 5.1 us for the f16 cache's reduce; BENCHMARKS.md, "CUDA: dense quantize for a decode
// step".)
template <int D>
__global__ void __launch_bounds__(kReduceThreads) decode_reduce_kernel(const __grid_constant__ DecodeArgs a) {
  constexpr int R = kReduceThreads / D;
  __shared__ float w[kMaxSplits];
  __shared__ __align__(16) float part[R * D];
  __shared__ float y[D], x[D];
  __shared__ float total;
  constexpr int kParts = 16, W = D / kParts;  // dense inverse: 16 threads a row, W columns each
  static_assert(kReduceThreads == 64 * kParts && W % 4 == 0, "64 rows of 16 float4-aligned parts");
  constexpr int P = 8;             // partial rows prefetched per thread
  const int hq = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, i = tid % D, r = tid / D;
  const int S = a.num_splits;
  const RotationDesc rot = a.vrot[hq / a.group];
  const bool dense = rot.kind == RotationKind::dense;
  const int row = 64 * blockIdx.z + tid / kParts, col0 = tid % kParts * W;
  // Loads that do not depend on the split kernel go first: the matrix slice.
  float4 mq[W / 4];
  if (dense) {
    const float4* m = reinterpret_cast<const float4*>(rot.matrix_t + static_cast<int64_t>(row) * D + col0);
#pragma unroll
    for (int k = 0; k < W / 4; ++k) mq[k] = __ldg(m + k);
  }
  pdl_wait();  // launched early behind the split kernel
  const int64_t row0 = (static_cast<int64_t>(b) * a.n_kv * a.group + hq) * S;
  // The first P partial rows of this thread load together with the log-sum-exps.
  float pre[P];
#pragma unroll
  for (int j = 0; j < P; ++j) pre[j] = r + j * R < S ? a.part_o[(row0 + r + j * R) * D + i] : 0.f;
  for (int s = tid; s < S; s += kReduceThreads) w[s] = a.part_lse[row0 + s];
  __syncthreads();
  if (tid < 32) {
    float M = -INFINITY;
    for (int s = tid; s < S; s += 32) M = fmaxf(M, w[s]);
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) M = fmaxf(M, __shfl_xor_sync(kFull, M, off));
    float L = 0.f;
    for (int s = tid; s < S; s += 32) {
      const float f = M == -INFINITY ? 0.f : exp2f(w[s] - M);
      w[s] = f;
      L += f;
    }
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) L += __shfl_xor_sync(kFull, L, off);
    if (tid == 0) total = L;
  }
  __syncthreads();
  float o = 0.f;
#pragma unroll
  for (int j = 0; j < P; ++j)
    if (r + j * R < S) o += w[r + j * R] * pre[j];
#pragma unroll 4
  for (int s = r + P * R; s < S; s += R) o += w[s] * a.part_o[(row0 + s) * D + i];
  part[r * D + i] = o;
  __syncthreads();
  if (tid < D) {
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < R; ++k) sum += part[k * D + tid];
    y[tid] = total > 0.f ? sum / total : 0.f;
  }
  __syncthreads();
  const int64_t out0 = (static_cast<int64_t>(b) * a.n_kv * a.group + hq) * D;
  if (dense) {
    // x_row = sum_k Q[k][row] y_k = row `row` of Qᵀ times y; 16 lanes of a half-warp
    // share the row.
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < W / 4; ++k) {
      const float* yk = y + col0 + 4 * k;
      sum = fmaf(mq[k].x, yk[0], fmaf(mq[k].y, yk[1], fmaf(mq[k].z, yk[2], fmaf(mq[k].w, yk[3], sum))));
    }
#pragma unroll
    for (int off = kParts / 2; off >= 1; off >>= 1) sum += __shfl_xor_sync(kFull, sum, off);
    // Affine map: x = P⁻¹ y + μ; an empty sequence stays a zero output.
    if (col0 == 0 && row < D)
      store_element(a.out, out0 + row, a.out_dtype, rot.mu && total > 0.f ? sum + rot.mu[row] : sum);
    return;
  }
  if (blockIdx.z > 0) return;  // not dense: one CTA per head (launched with v_slices = 1)
  rotate_inverse_vec<D>(rot, y, x, part);  // part: never read as a chunk here (not dense)
  if (tid < D) store_element(a.out, out0 + tid, a.out_dtype, x[tid]);
}

// Whether a layer needs the kExt split kernel.
bool split_ext(const CodecDesc& k, const CodecDesc& v, int sink_tokens) {
  return sink_tokens > 0 || k.kind == QuantKind::grouped || v.kind == QuantKind::grouped;
}

template <int D, int G>
auto split_kernel(bool ext) {
  return ext ? decode_split_kernel<D, G, true> : decode_split_kernel<D, G, false>;
}

template <int D>
void launch_decode(DecodeArgs a, int batch, CudaDecodeRoute route, SplitLaunch mode, cudaStream_t stream) {
  if (mode == SplitLaunch::prepared) {
    decode_prepare_kernel<D><<<dim3(a.n_kv, batch, D / 32 * a.q_frames), kTileThreads, 0, stream>>>(a);
    check_launch("decode_prepare_kernel");
  }
  if (route.tensor_core()) {
    if (route.tile())
      launch_decode_mma_tile(a, D, batch, mode, stream);
    else
      launch_decode_mma(a, D, route.mma_bits, batch, mode, stream);
    if (mode == SplitLaunch::single) return;  // the split kernel merged the splits
    launch_pdl(decode_reduce_kernel<D>, dim3(a.n_kv * a.group, batch, a.v_slices), dim3(kReduceThreads), 0, stream,
               a, "decode_reduce_kernel");
    return;
  }
  const dim3 grid(a.num_splits, a.n_kv, batch);
  auto run = [&](auto kernel, int smem_bytes) {
    if (smem_bytes > 48 * 1024)  // opt in to more than the default dynamic shared memory
      check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes),
                 "cudaFuncSetAttribute (decode_split_kernel shared memory)");
    kernel<<<grid, kWarps * 32, smem_bytes, stream>>>(a);
  };
  const int rbk = a.kc.record_bytes, rbv = a.vc.record_bytes, lk = lut_floats(a.kc), lv = lut_floats(a.vc);
  const bool ext = split_ext(a.kc, a.vc, a.sink_tokens);
  switch (a.group) {  // group_of admits 1, 2, 4 and 8 only
    case 1: run(split_kernel<D, 1>(ext), split_smem(D, 1, rbk, rbv, lk, lv).total); break;
    case 2: run(split_kernel<D, 2>(ext), split_smem(D, 2, rbk, rbv, lk, lv).total); break;
    case 4: run(split_kernel<D, 4>(ext), split_smem(D, 4, rbk, rbv, lk, lv).total); break;
    case 8: run(split_kernel<D, 8>(ext), split_smem(D, 8, rbk, rbv, lk, lv).total); break;
    default: throw Error("decode_attention: " + std::to_string(a.group) + " query heads per KV head is not compiled");
  }
  check_launch("decode_split_kernel");
  decode_reduce_kernel<D><<<dim3(a.n_kv * a.group, batch, a.v_slices), kReduceThreads, 0, stream>>>(a);
  check_launch("decode_reduce_kernel");
}

template <int D, int G>
int resident_split_ctas_of(int rbk, int rbv, int lk, int lv, bool ext) {
  const int smem = split_smem(D, G, rbk, rbv, lk, lv).total;
  const auto kernel = split_kernel<D, G>(ext);
  if (smem > 48 * 1024)
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
               "cudaFuncSetAttribute (decode_split_kernel shared memory)");
  int n = 0;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kWarps * 32, smem),
             "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  return std::max(1, n);
}

int query_resident_split_ctas(int d, int g, int rbk, int rbv, int lk, int lv, bool ext) {
  return dispatch_head_dim(d, "decode_attention", [&]<int D>() {
    switch (g) {
      case 1: return resident_split_ctas_of<D, 1>(rbk, rbv, lk, lv, ext);
      case 2: return resident_split_ctas_of<D, 2>(rbk, rbv, lk, lv, ext);
      case 4: return resident_split_ctas_of<D, 4>(rbk, rbv, lk, lv, ext);
      case 8: return resident_split_ctas_of<D, 8>(rbk, rbv, lk, lv, ext);
    }
    throw Error("decode_attention: " + std::to_string(g) + " query heads per KV head is not compiled");
  });
}

// CTAs of the split kernel one SM holds at once, for this head_dim, group and codecs;
// queried once per configuration and device (the query costs host time on every step).
int resident_split_ctas(int d, int g, int rbk, int rbv, int lk, int lv, bool ext) {
  static std::mutex mu;
  static std::map<std::tuple<int, int, int, int, int, int, int, bool>, int> cache;
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  const auto key = std::make_tuple(dev, d, g, rbk, rbv, lk, lv, ext);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  return cache[key] = query_resident_split_ctas(d, g, rbk, rbv, lk, lv, ext);
}

// TQ_CUDA_DECODE=simt|mma overrides DecodeKernel::auto_, TQ_CUDA_LAUNCH=single|split_reduce
// DecodeLaunch::auto_; each read once.
DecodeKernel env_decode_kernel() {
  static const DecodeKernel k =
      env_override<DecodeKernel>("TQ_CUDA_DECODE", "decode attention", "DecodeParams::kernel",
                                 {{"simt", DecodeKernel::simt}, {"mma", DecodeKernel::mma}});
  return k;
}

DecodeLaunch env_decode_launch() {
  static const DecodeLaunch l =
      env_override<DecodeLaunch>("TQ_CUDA_LAUNCH", "decode attention", "DecodeParams::launch",
                                 {{"single", DecodeLaunch::single},
                                  {"split_reduce", DecodeLaunch::split_reduce},
                                  {"prepared", DecodeLaunch::prepared}});
  return l;
}

// Why the layer's codecs cannot run on `k` ("" when they can).
std::string decode_unsupported(const DeviceKvCache& cache, int layer, DecodeKernel k) {
  if (k != DecodeKernel::mma || cache.plan().layer(layer).cuda_decode.tensor_core()) return "";
  const KvCachePlan& plan = cache.plan();
  const std::string codecs = "K " + plan.side(layer, false).codec + " / V " + plan.side(layer, true).codec;
  return "the tensor-core decode kernel (mma) does not take " + codecs +
         (plan.config().sink_tokens > 0 ? " with attention sinks" : "") +
         ": it needs calibrated records on both sides, f16, q8_0 or q4_0 records of one kind on both sides, or "
         "uniform 2-4 bit mse codes with one codebook on both sides and no sinks";
}

// The split kernel of this request: the route the plan resolved for the layer, unless an
// explicit kernel (or, for DecodeKernel::auto_, TQ_CUDA_DECODE) names one. tq::Error when
// an explicit kernel cannot run the layer, never a silent fallback.
CudaDecodeRoute route_of(const DeviceKvCache& cache, const DecodeParams& p) {
  if (p.layer < 0 || p.layer >= cache.config().n_layers)
    throw Error("decode_attention: layer " + std::to_string(p.layer) + " out of range");
  const DecodeKernel k = p.kernel == DecodeKernel::auto_ ? env_decode_kernel() : p.kernel;
  if (k == DecodeKernel::simt) return CudaDecodeRoute{};
  if (k == DecodeKernel::mma) {
    const std::string why = decode_unsupported(cache, p.layer, k);
    if (!why.empty()) throw Error("decode_attention: " + why);
  }
  return cache.plan().layer(p.layer).cuda_decode;
}

size_t align256(size_t x) { return (x + 255) & ~size_t(255); }

// A call's workspace. Keys in RoPE frames: one query set per frame of the layer's keys up
// to position max_seq_len - 1, each with its q·μ (q_bias); else one set and no bias.
struct Workspace {
  int frames = 1;
  bool bias = false;
  size_t q_rot, q_bias, part_o, part_lse, total;
};

Workspace workspace_layout(const DeviceKvCache& cache, const DecodeParams& p, int splits) {
  const int range = cache.impl().layers[p.layer][0].frames.range;
  const size_t rows = static_cast<size_t>(p.batch) * p.n_q_heads, d = cache.config().head_dim;
  Workspace w;
  w.frames = range > 0 ? std::max(0, p.max_seq_len - 1) / range + 1 : 1;
  w.bias = range > 0;
  w.q_rot = 0;
  w.q_bias = align256(sizeof(float) * rows * d * w.frames);
  w.part_o = w.q_bias + (w.bias ? align256(sizeof(float) * rows * w.frames) : 0);
  w.part_lse = w.part_o + align256(sizeof(float) * rows * static_cast<size_t>(splits) * d);
  w.total = w.part_lse + align256(sizeof(float) * rows * static_cast<size_t>(splits));
  return w;
}

int group_of(const DeviceKvCache& cache, const DecodeParams& p, CudaDecodeRoute route) {
  const KvCacheConfig& cfg = cache.config();
  auto fail = [](const std::string& m) { throw Error("decode_attention: " + m); };
  if (p.batch <= 0) fail("batch must be positive, got " + std::to_string(p.batch));
  if (p.n_q_heads <= 0 || p.n_q_heads % cfg.n_kv_heads != 0)
    fail("n_q_heads " + std::to_string(p.n_q_heads) + " is not a positive multiple of n_kv_heads " +
         std::to_string(cfg.n_kv_heads));
  const int g = p.n_q_heads / cfg.n_kv_heads;
  if (g != 1 && g != 2 && g != 4 && g != 8)
    fail("query heads per KV head must be 1, 2, 4 or 8, got " + std::to_string(g));
  if (!route.tensor_core() && cfg.block_tokens % (32 / g) != 0)
    fail("block_tokens " + std::to_string(cfg.block_tokens) + " must be a multiple of " + std::to_string(32 / g) +
         " for " + std::to_string(g) + " query heads per KV head");
  if (p.window < 0) fail("window must be >= 0 (0: none), got " + std::to_string(p.window));
  if (!route.tensor_core()) {
    // The CUDA-core kernel's ring holds 32/g records per warp and stage: wide records with
    // few query heads per KV head (f16 at d >= 128 with g = 1) pass the device's limit.
    // Said here by name: the launch had failed as "invalid argument".
    const auto& layer = cache.impl().layers[p.layer];
    const int smem = split_smem(cfg.head_dim, g, static_cast<int>(layer[0].record_bytes),
                                static_cast<int>(layer[1].record_bytes), lut_floats(layer[0].desc),
                                lut_floats(layer[1].desc))
                         .total;
    const int limit = max_block_smem();
    if (smem > limit)
      fail("the CUDA-core decode kernel (simt) needs " + std::to_string(smem) + " bytes of shared memory for K " +
           cache.plan().side(p.layer, false).codec + " / V " + cache.plan().side(p.layer, true).codec +
           " at head_dim " + std::to_string(cfg.head_dim) + " with " + std::to_string(g) +
           " query head(s) per KV head; the device allows " + std::to_string(limit) +
           " (DecodeKernel::auto_ or mma take this pair on the tensor-core kernel)");
  }
  if (p.max_seq_len < 0 || p.max_seq_len > static_cast<int64_t>(p.max_blocks_per_seq) * cfg.block_tokens)
    fail("max_seq_len " + std::to_string(p.max_seq_len) + " exceeds max_blocks_per_seq * block_tokens");
  return g;
}

// Splits of one request whose group and route are resolved: two full waves of CTAs (a
// partial last wave would idle most SMs for a whole CTA's time), each warp left at least
// two tiles. The tensor-core kernel: steps of 16 tokens, each warp left at least one
// (small contexts are latency-bound: more CTAs with less work each finish sooner).
int num_splits(const DeviceKvCache& cache, const DecodeParams& p, int g, CudaDecodeRoute route) {
  if (p.num_splits > 0) return std::min(p.num_splits, kMaxSplits);
  const auto& layer = cache.impl().layers[p.layer];
  const int d = cache.config().head_dim;
  const int rbk = static_cast<int>(layer[0].record_bytes), rbv = static_cast<int>(layer[1].record_bytes);
  const bool tc = route.tensor_core();
  const int lk = lut_floats(layer[0].desc), lv = lut_floats(layer[1].desc);
  const int per_sm = route.tile()      ? mma_tile_resident_ctas(layer[0].desc, layer[1].desc, d, g)
                     : route.mma_bits  ? mma_resident_ctas(d, route.mma_bits, g, rbk, rbv)
                                       : resident_split_ctas(d, g, rbk, rbv, lk, lv,
                                                             split_ext(layer[0].desc, layer[1].desc,
                                                                       cache.config().sink_tokens));
  const int slots = cache.impl().sm_count * per_sm;
  const int ctas = p.batch * cache.config().n_kv_heads;
  const int tile = tc ? kMmaTileTokens : 32 / g;
  // A window bounds what a row reads to its last `window` tokens, in at most
  // ceil(window / tile) + 1 tiles (the first one partly masked).
  const int64_t len = p.window > 0 ? std::min<int64_t>(p.max_seq_len, int64_t(p.window) + tile) : p.max_seq_len;
  const int tiles = static_cast<int>((len + tile - 1) / tile);
  int splits = std::max(1, 2 * slots / ctas);
  splits = std::min(splits, std::max(1, tiles / ((tc ? 1 : 2) * kWarps)));
  // Tensor-core kernel with fewer than 4 steps per warp (short contexts): one wave, each
  // warp left 3 steps. Every CTA pays a fixed start (pair table, first copies, merge) and
  // the reduce reads every split; measured on the H200 (turbo3): batch 1 / 4K 24 splits
  // 16.5 us against 64 splits 21.2 us, batch 8 / 4K 8 splits 42.7 us against 20 splits
  // 47.4 us.
  if (tc && tiles < 4 * kWarps * splits)
    splits = std::max(1, std::min(slots / ctas, (tiles + 3 * kWarps - 1) / (3 * kWarps)));
  // Fewer than 32 steps per warp in two waves: one wave, so that fixed start is spread
  // over twice the steps and the reduce merges half the splits. H100, session 35
  // (BENCHMARKS.md, "one wave of splits"): batch 1 / 64K turbo3 165 -> 82 splits 0.89x
  // the time, q8_0 99 -> 49 0.95x, batch 8 / 4K q8_0 0.97x. Long contexts keep two
  // waves, which balance the SMs better (batch 8 / 64K turbo3, 51 steps: 10 splits
  // 1.01x, q4_0h 1.03x).
  else if (tc && tiles < 32 * kWarps * splits)
    splits = std::max(1, slots / ctas);
  return std::max(1, std::min(splits, kMaxSplits));
}

// The largest cluster the layer's tensor-core kernel runs as a single launch (0: none).
int single_cap(const DeviceKvCache& cache, const DecodeParams& p, int g, CudaDecodeRoute route) {
  const auto& layer = cache.impl().layers[p.layer];
  const int d = cache.config().head_dim;
  return route.tile() ? mma_tile_single_cap(layer[0].desc, layer[1].desc, d, g)
                      : mma_single_cap(d, route.mma_bits, g, static_cast<int>(layer[0].record_bytes));
}

// What an explicit single launch runs: the split count (the library's `splits` held to
// one cluster, a forced DecodeParams::num_splits as it is), or why it cannot run.
struct SinglePlan {
  int splits;
  std::string why;  // empty when it can
};

SinglePlan single_plan(const DeviceKvCache& cache, const DecodeParams& p, int g, CudaDecodeRoute route, int splits) {
  const KvCacheConfig& cfg = cache.config();
  if (!route.tensor_core()) return {0, "the CUDA-core split kernel (simt) has none"};
  if (cfg.head_dim > 128) return {0, "head_dim " + std::to_string(cfg.head_dim) + " is over 128"};
  if (cfg.sink_tokens > 0) return {0, "the cache keeps attention sinks"};
  if (const RopeFrames* f = cache.plan().key_frames(p.layer))
    return {0, "layer " + std::to_string(p.layer) + " keeps its keys in RoPE frames (rope_range " +
                   std::to_string(f->range()) + "): the single launch prepares one query per head, not one per frame"};
  const int cap = single_cap(cache, p, g, route);
  if (cap == 0) return {0, "thread-block clusters need compute capability 9.0 or newer"};
  const int s = p.num_splits == 0 ? std::min(splits, cap) : splits;
  if (s > cap) return {0, std::to_string(s) + " splits are more than the " + std::to_string(cap) + " CTAs of a cluster"};
  return {s, ""};
}

// Whether the split kernel reads its queries itself in a split-reduce step: the
// tensor-core kernels where the keys have no rotation (f16, q8_0, q4_0, fp8, sq*), without
// sinks (their exact scores read the prepare kernel's q_rot), so the prepare launch has
// nothing to do but scale. The queries are loaded once the first copies are in flight.
// (Rotating them in the split kernel's prologue, as the single launch does, measured
// slower than the prepare launch on the H100: the copies waited for the prologue.)
// The kernels load the queries in pairs: the pointer aligned to two elements, the stride even.
bool direct_queries_apply(const DeviceKvCache& cache, const DecodeParams& p, CudaDecodeRoute route) {
  const size_t pair_bytes = p.queries_dtype == DType::f32 ? 8 : 4;
  return route.tensor_core() && !route.mma_grouped && cache.config().sink_tokens == 0 &&
         cache.impl().layers[p.layer][0].rot_kind == RotationKind::none &&
         reinterpret_cast<uintptr_t>(p.queries) % pair_bytes == 0 && p.query_stride % 2 == 0;
}

// The call's split count and launch mode (DecodeLaunch, cuda.h).
struct LaunchPlan {
  int splits;
  SplitLaunch mode;
};

LaunchPlan launch_plan(const DeviceKvCache& cache, const DecodeParams& p, int g, CudaDecodeRoute route) {
  const int splits = num_splits(cache, p, g, route);
  const DecodeLaunch launch = p.launch == DecodeLaunch::auto_ ? env_decode_launch() : p.launch;
  // auto_ is split_reduce: measured on the H200 (BENCHMARKS.md, "one launch per decode
  // step"), the cluster launch was slower in every row, even at batch 1 / 4K.
  if (launch == DecodeLaunch::prepared) return {splits, SplitLaunch::prepared};
  if (launch != DecodeLaunch::single)
    return {splits, direct_queries_apply(cache, p, route) ? SplitLaunch::direct_queries : SplitLaunch::prepared};
  const SinglePlan sp = single_plan(cache, p, g, route, splits);
  if (!sp.why.empty()) throw Error("decode_attention: no single launch (DecodeLaunch::single): " + sp.why);
  return {sp.splits, SplitLaunch::single};
}

}  // namespace

CudaDecodeRoute resolve_decode_route(const CodecDesc& k, const CodecDesc& v, int sink_tokens) {
  CudaDecodeRoute r;
  if (mma_grouped_applies(k, v))
    r.mma_grouped = true;
  else if (mma_plain_applies(k, v))
    r.mma_plain = true;
  else if (sink_tokens == 0)  // the uniform kernel does not read the sink store
    r.mma_bits = mma_decode_bits(k, v);
  return r;
}

}  // namespace detail

const char* kernel_name(DecodeKernel k) {
  return k == DecodeKernel::simt ? "simt" : k == DecodeKernel::mma ? "mma" : "auto";
}

const char* launch_name(DecodeLaunch l) {
  switch (l) {
    case DecodeLaunch::split_reduce: return "split_reduce";
    case DecodeLaunch::single: return "single";
    case DecodeLaunch::prepared: return "prepared";
    default: return "auto";
  }
}

std::string decode_single_unsupported(const DeviceKvCache& cache, const DecodeParams& p) {
  const CudaDecodeRoute route = detail::route_of(cache, p);
  const int g = detail::group_of(cache, p, route);
  return detail::single_plan(cache, p, g, route, detail::num_splits(cache, p, g, route)).why;
}

std::string decode_kernel_unsupported(const DeviceKvCache& cache, int layer, DecodeKernel k) {
  if (layer < 0 || layer >= cache.config().n_layers)
    throw Error("decode_kernel_unsupported: layer " + std::to_string(layer) + " out of range");
  return detail::decode_unsupported(cache, layer, k);
}

int decode_num_splits(const DeviceKvCache& cache, const DecodeParams& p) {
  const CudaDecodeRoute route = detail::route_of(cache, p);
  return detail::launch_plan(cache, p, detail::group_of(cache, p, route), route).splits;
}

size_t decode_workspace_bytes(const DeviceKvCache& cache, const DecodeParams& p) {
  const int splits = decode_num_splits(cache, p);
  return detail::workspace_layout(cache, p, splits).total;
}

void decode_attention(const DeviceKvCache& cache, const DecodeParams& p) {
  const KvCacheConfig& cfg = cache.config();
  const CudaDecodeRoute route = detail::route_of(cache, p);  // resolved once per call, from the plan
  const int g = detail::group_of(cache, p, route);
  const detail::LaunchPlan plan = detail::launch_plan(cache, p, g, route);
  const int splits = plan.splits;
  const detail::Workspace ws = detail::workspace_layout(cache, p, splits);
  auto fail = [](const std::string& m) { throw Error("decode_attention: " + m); };
  if (!p.queries || !p.out || !p.block_tables || !p.seq_lens) fail("queries, out, block_tables and seq_lens must be device pointers");
  if (p.query_stride != 0 && p.query_stride < static_cast<int64_t>(p.n_q_heads) * cfg.head_dim)
    fail("query_stride " + std::to_string(p.query_stride) + " is smaller than n_q_heads * head_dim = " +
         std::to_string(static_cast<int64_t>(p.n_q_heads) * cfg.head_dim));
  if (!p.workspace || p.workspace_bytes < ws.total)
    fail("workspace of " + std::to_string(p.workspace_bytes) + " bytes is smaller than the " +
         std::to_string(ws.total) + " bytes decode_workspace_bytes asks for");
  if (cfg.sink_tokens > 0 && !p.seq_ids)
    fail("the cache keeps sink_tokens = " + std::to_string(cfg.sink_tokens) +
         " exact positions: DecodeParams::seq_ids is required");
  const auto& layer = cache.impl().layers[p.layer];
  detail::DecodeArgs a{};
  a.sink_k = layer[0].sinks;
  a.sink_v = layer[1].sinks;
  a.seq_ids = p.seq_ids;
  a.sink_tokens = cfg.sink_tokens;
  a.sink_seqs = cache.num_blocks();
  a.kc = layer[0].desc;
  a.vc = layer[1].desc;
  a.krot = layer[0].rotations;
  a.vrot = layer[1].rotations;
  a.kpool = layer[0].pool;
  a.vpool = layer[1].pool;
  a.kblock_bytes = static_cast<int64_t>(layer[0].block_bytes);
  a.vblock_bytes = static_cast<int64_t>(layer[1].block_bytes);
  a.queries = p.queries;
  a.query_stride = p.query_stride ? p.query_stride : static_cast<int64_t>(p.n_q_heads) * cfg.head_dim;
  a.queries_dtype = static_cast<int>(p.queries_dtype);
  const float scale = p.scale > 0.f ? p.scale : 1.f / std::sqrt(static_cast<float>(cfg.head_dim));
  a.q_scale = scale * 1.4426950408889634f;
  auto* base = static_cast<unsigned char*>(p.workspace);
  a.q_rot = reinterpret_cast<float*>(base + ws.q_rot);
  a.frames = layer[0].frames;
  a.q_frames = ws.frames;
  a.q_frame_floats = static_cast<int64_t>(p.batch) * p.n_q_heads * cfg.head_dim;
  a.q_bias = ws.bias ? reinterpret_cast<float*>(base + ws.q_bias) : nullptr;
  a.part_o = reinterpret_cast<float*>(base + ws.part_o);
  a.part_lse = reinterpret_cast<float*>(base + ws.part_lse);
  a.block_tables = p.block_tables;
  a.max_blocks = p.max_blocks_per_seq;
  a.seq_lens = p.seq_lens;
  a.n_kv = cfg.n_kv_heads;
  a.group = g;
  a.block_tokens = cfg.block_tokens;
  a.block_shift = (cfg.block_tokens & (cfg.block_tokens - 1)) == 0 ? __builtin_ctz(cfg.block_tokens) : -1;
  a.num_splits = splits;
  a.v_slices = layer[1].rot_kind == RotationKind::dense ? std::max(1, cfg.head_dim / 64) : 1;
  a.window = p.window;
  a.out = p.out;
  a.out_dtype = static_cast<int>(p.out_dtype);
  auto stream = static_cast<cudaStream_t>(p.stream);
  dispatch_head_dim(cfg.head_dim, "decode_attention", [&]<int D>() { detail::launch_decode<D>(a, p.batch, route, plan.mode, stream); });
}

}  // namespace tq::cuda
