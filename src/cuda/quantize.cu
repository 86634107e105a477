// Fused quantize-on-write: one launch reads a chunk of new keys and values, rotates each
// vector with its head's rotation, quantizes it with the codec row and writes the
// records straight into their cache slots. A CTA takes kVecs vectors of one KV head and
// one side (K or V) through shared memory: load -> rotate -> encode -> scatter. Every
// step follows the CPU reference's arithmetic (see rotation_device.cuh), so records are
// byte-identical to Codec::encode. On compute capability 9.0 a dense rotation's product is
// split over a cluster of D/32 CTAs (QuantizeSplit below).
#include <cooperative_groups.h>

#include "codebook_device.cuh"
#include "codec_desc.h"
#include "copy_async.cuh"
#include "cuda_check.h"
#include "decode_args.h"
#include "device_cache_impl.h"
#include "dtype_device.cuh"
#include "encode_grouped.cuh"
#include "env_override.h"
#include "pdl.cuh"
#include "quantize_args.h"
#include "range_device.cuh"
#include "rotation_device.cuh"
#include "turboquant/head_dim.h"

namespace tq::cuda {

namespace detail {

namespace {


template <int D>
struct QuantizeTile {
  static constexpr int kVecs = 4096 / D;  // 32 KB of float rows for x and y together
  static constexpr size_t kSmem =
      kVecs * (TileStrides<D>::kX + TileStrides<D>::kY) * sizeof(float) + kVecs * D;
  static_assert(kVecs * TileStrides<D>::kY >= kDenseChunkFloats, "y doubles as the dense chunk buffer");
};

// A dense rotation's product split over a cluster of kCtas CTAs: rank r computes rows
// [32r, 32r + 32) of y for the tile's vectors into rank 0's y, which alone encodes and
// writes. Each CTA reads its 32 columns of Qᵀ once, every load in flight together; one CTA
// streaming the whole of Qᵀ through a 16 KB chunk took 119 us per decode step at d = 256
// (one token; BENCHMARKS.md, "CUDA: dense quantize for a decode step").
template <int D>
struct QuantizeSplit {
  static constexpr int kCtas = D / 32;
  static constexpr int kSliceFloats = D * 32;  // [j][32 rows]
  static constexpr size_t kSmem = QuantizeTile<D>::kSmem + kSliceFloats * sizeof(float);
};

// y[v][32·rank + r] = sum_j Q[32·rank + r][j] x[v][j] for v < n_vecs, ascending j with every
// product and sum rounded on its own (DenseRotation::forward's order), written through
// `out` (rank 0's y). Thread (warp w, lane r) takes row r for vectors w, w + 4, ...
template <int D, int kVecs>
__device__ void dense_slice_rows(const float* slice, const float* x, int n_vecs, float* out, int rank) {
  constexpr int XS = TileStrides<D>::kX, S = TileStrides<D>::kY, kPer = kVecs / 4;
  static_assert(kTileThreads == 128 && kVecs % 4 == 0, "four warps, each a quarter of the vectors");
  const int r = threadIdx.x & 31, w = threadIdx.x >> 5;
  float acc[kPer];
#pragma unroll
  for (int k = 0; k < kPer; ++k) acc[k] = 0.f;
  for (int j = 0; j < D; j += 4) {
    const float q0 = slice[(j + 0) * 32 + r], q1 = slice[(j + 1) * 32 + r];
    const float q2 = slice[(j + 2) * 32 + r], q3 = slice[(j + 3) * 32 + r];
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int v = w + 4 * k;
      if (v < n_vecs) {  // uniform over the warp
        const float4 xv = *reinterpret_cast<const float4*>(x + v * XS + j);
        float a = acc[k];
        a = __fadd_rn(a, __fmul_rn(q0, xv.x));
        a = __fadd_rn(a, __fmul_rn(q1, xv.y));
        a = __fadd_rn(a, __fmul_rn(q2, xv.z));
        acc[k] = __fadd_rn(a, __fmul_rn(q3, xv.w));
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kPer; ++k)
    if (w + 4 * k < n_vecs) out[(w + 4 * k) * S + 32 * rank + r] = acc[k];
}

// Eight consecutive input elements from a 16-byte aligned address.
__device__ inline void load8(const void* base, int64_t i, int dtype, float* out) {
  if (dtype == 0) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
    const float4 a = p[0], b = p[1];
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    return;
  }
  const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(base) + i);
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
  unpack_16bit_pairs<4>(w, dtype, out);
}

// One warp per vector; lane holds coordinates lane + 32k. ‖y‖² is a sum of exact
// double products, reduced as a tree rather than in the reference's sequential order:
// the float norm can differ only when that double lies within ~1e-15 of a float
// rounding boundary (a tie the tests count; none has been seen).
template <int D>
__device__ void encode_mse(const CodecDesc& c, const SharedCodebooks& cb, const float* y, uint8_t* rec, uint8_t* codes,
                           int n_vecs, bool* clamped) {
  constexpr int S = D + 1, K = D / 32;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int rb = c.record_bytes;
  for (int v = warp; v < n_vecs; v += kTileThreads / 32) {
    float e[K];
    double n2 = 0;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      e[k] = y[v * S + lane + 32 * k];
      n2 += static_cast<double>(e[k]) * e[k];
    }
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) n2 += __shfl_xor_sync(0xffffffffu, n2, off);
    const float norm = static_cast<float>(sqrt(n2));
    const float inv = reciprocal_or_zero(norm);
    uint8_t* vc = codes + v * D;
    double c2 = 0;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      const float t = __fmul_rn(e[k], inv);
      const int half = i < c.n_hi ? 0 : 1;
      const int idx = bucketize(t, cb.bounds[half], half ? c.bits_lo : c.bits_hi);
      vc[i] = static_cast<uint8_t>(idx);
      const float l = cb.levels[half][idx];
      c2 += static_cast<double>(l) * l;
    }
    uint8_t* out = rec + v * rb;
    if (c.corrected) {
#pragma unroll
      for (int off = 16; off >= 1; off >>= 1) c2 += __shfl_xor_sync(0xffffffffu, c2, off);
    }
    if (lane == 0) {
      bool sat = false;
      store_half_field(out, c.corrected && norm > 0.f ? static_cast<float>(static_cast<double>(norm) / sqrt(c2)) : norm, sat);
      if (sat) clamped[v] = true;
    }
    __syncwarp();
    // Eight codes of b bits fill b whole bytes: lane g packs codes [8g, 8g + 8).
    if (lane < D / 8) {
      const int first = 8 * lane;
      const bool hi = first < c.n_hi;
      const int bits = hi ? c.bits_hi : c.bits_lo;
      const int byte0 = hi ? c.hi_offset + lane * bits : c.lo_offset + (first - c.n_hi) / 8 * bits;
      uint32_t word = 0;
#pragma unroll
      for (int t = 0; t < 8; ++t) word |= static_cast<uint32_t>(vc[first + t]) << (t * bits);
      for (int k = 0; k < bits; ++k) out[byte0 + k] = static_cast<uint8_t>(word >> (8 * k));
    }
  }
}

// f16, q8_0, q4_0 and group records: one thread per 32-block or group, in the
// reference's order (quantizer_ggml.cpp, quantizer_group.cpp). A thread that saturates a
// field marks its vector in `clamped` (every writer writes true).
template <int D>
__device__ void encode_blocks(const CodecDesc& c, const float* y, uint8_t* rec, int n_vecs, bool* clamped) {
  constexpr int S = D + 1;
  const int tid = threadIdx.x, rb = c.record_bytes;
  if (c.kind == QuantKind::f16) {
    for (int e = tid; e < n_vecs * D; e += kTileThreads) {
      bool sat = false;
      store_half_field(rec + (e / D) * rb + 2 * (e % D), y[(e / D) * S + e % D], sat);
      if (sat) clamped[e / D] = true;
    }
    return;
  }
  const int span = c.kind == QuantKind::group ? c.group : 32;
  const int per_vec = D / span;
  for (int e = tid; e < n_vecs * per_vec; e += kTileThreads) {
    const int v = e / per_vec, b = e % per_vec;
    const float* x = y + v * S + b * span;
    bool sat = false;
    if (c.kind == QuantKind::q8_0) {
      uint8_t* out = rec + v * rb + 34 * b;
      float amax = 0.f;
      for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(x[j]));
      const float d = __fdiv_rn(amax, 127.f);
      const float id = reciprocal_or_zero(d);
      store_half_field(out, d, sat);
      for (int j = 0; j < 32; ++j)
        out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(roundf(__fmul_rn(x[j], id))));
    } else if (c.kind == QuantKind::q4_0) {
      uint8_t* out = rec + v * rb + 18 * b;
      float amax = 0.f, mx = 0.f;
      for (int j = 0; j < 32; ++j)
        if (amax < fabsf(x[j])) amax = fabsf(x[j]), mx = x[j];
      const float d = __fdiv_rn(mx, -8.f);
      const float id = reciprocal_or_zero(d);
      store_half_field(out, d, sat);
      for (int j = 0; j < 16; ++j) {
        const int q0 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[j], id), 8.5f)));
        const int q1 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[j + 16], id), 8.5f)));
        out[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
      }
    } else {  // group: [fp16 min][fp16 step][codes]
      uint8_t* out = rec + v * rb + c.group_bytes * b;
      const int top = (1 << c.group_bits) - 1;
      // std::minmax_element: the first smallest and the last largest element (the sign
      // of a zero min reaches the stored fp16 bits).
      float lo = x[0], hi = x[0];
      for (int j = 1; j < span; ++j) {
        if (x[j] < lo) lo = x[j];
        if (!(x[j] < hi)) hi = x[j];
      }
      const float mn = round_half_field(lo, sat);
      const float step = round_half_field(__fdiv_rn(__fsub_rn(hi, mn), static_cast<float>(top)), sat);
      store_half_field(out, mn, sat);  // both already in range
      store_half_field(out + 2, step, sat);
      for (int k = 4; k < c.group_bytes; ++k) out[k] = 0;
      for (int j = 0; j < span; ++j) {
        const float q = step > 0.f ? rintf(__fdiv_rn(__fsub_rn(x[j], mn), step)) : 0.f;
        const uint32_t code = static_cast<uint32_t>(fminf(fmaxf(q, 0.f), static_cast<float>(top)));
        const int bit = j * c.group_bits;
        out[4 + (bit >> 3)] |= static_cast<uint8_t>(code << (bit & 7));
        if ((bit & 7) + c.group_bits > 8) out[4 + (bit >> 3) + 1] |= static_cast<uint8_t>(code >> (8 - (bit & 7)));
      }
    }
    if (sat) clamped[v] = true;
  }
}

// NaN/Inf inputs are refused (docs/FORMATS.md, "Range"): one warp per vector finds its
// first bad coordinate and reports it in the layer's status. Also clears the vector's
// flags; a refused vector is encoded like the others but never written. Not inlined: it
// runs once per CTA, and inlined it made the d = 256 kernel spill a register on sm_80.
template <int D>
__device__ __noinline__ void refuse_nonfinite(const QuantizeArgs& a, int side, int head, int t0, const float* x, int n_vecs,
                                 const int32_t* slots, bool* refused, bool* clamped) {
  constexpr int XS = TileStrides<D>::kX;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int v = warp; v < n_vecs; v += kTileThreads / 32) {
    int first = D;
    for (int i = lane; i < D; i += 32)
      if (!isfinite(x[v * XS + i])) {
        first = i;
        break;
      }
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) first = min(first, __shfl_xor_sync(0xffffffffu, first, off));
    if (lane == 0) {
      const bool bad = first < D && slots[v] >= 0;
      refused[v] = bad;
      clamped[v] = false;
      if (bad) {
        note_bad_value(a.status, t0 + v, side, head, first, x[v * XS + first]);
        atomicAdd(&a.status->nonfinite, 1ull);
      }
    }
  }
}

// Calibrated records: one half-warp per (vector, run), a trial per lane. Items go run by
// run, so a warp's two halves take the same run of neighbouring vectors and their loops
// keep step.
template <int D>
__device__ void encode_grouped(const CodecDesc& c, const float* y, uint8_t* rec, int n_vecs, bool* clamped) {
  constexpr int S = D + 1;
  const int lane = threadIdx.x & 31;
  const unsigned mask = 0xffffu << (lane & 16);
  for (int e = threadIdx.x >> 4; e < n_vecs * c.n_runs; e += kTileThreads / 16) {
    const GroupRun r = c.runs[e / n_vecs];
    const int v = e % n_vecs;
    if (r.bits == 0) continue;  // uniform over the half-warp
    if (encode_grouped_run(c, r, y + v * S + r.begin, rec + v * c.record_bytes + r.offset, mask, lane & 15))
      clamped[v] = true;
  }
}

// kSplit: the dense product split over a cluster (QuantizeSplit; blockIdx.x = tile · kCtas +
// rank), compiled for compute capability 9.0 only.
template <int D, bool kSplit>
__global__ void __launch_bounds__(kTileThreads) quantize_kernel(const __grid_constant__ QuantizeArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  if constexpr (kSplit) {
    __trap();  // never launched below 9.0 (quantize_on_write asks pdl_supported)
    return;
  }
#endif
  using Tile = QuantizeTile<D>;
  constexpr int XS = TileStrides<D>::kX, S = TileStrides<D>::kY, kCtas = kSplit ? QuantizeSplit<D>::kCtas : 1;
  extern __shared__ __align__(16) unsigned char smem[];
  float* x = reinterpret_cast<float*>(smem);
  float* y = x + Tile::kVecs * XS;
  uint8_t* codes = reinterpret_cast<uint8_t*>(y + Tile::kVecs * S);
  uint8_t* rec = reinterpret_cast<uint8_t*>(x);  // x is dead once rotated
  float* slice = reinterpret_cast<float*>(smem + Tile::kSmem);  // kSplit: this rank's 32 columns of Qᵀ

  const int rank = static_cast<int>(blockIdx.x) % kCtas;
  const int side = a.first_side + blockIdx.z, head = blockIdx.y, t0 = blockIdx.x / kCtas * Tile::kVecs;
  const int n_vecs = min(Tile::kVecs, a.n_tokens - t0);
  const CodecDesc& c = a.codec[side];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  __shared__ SharedCodebooks cb;
  __shared__ bool refused[Tile::kVecs], clamped[Tile::kVecs];
  // The tile's slots, loaded once up front: read later in dependent loops (a warp's records
  // one after another), each global load had been a round trip of its own.
  __shared__ int32_t slot_of[Tile::kVecs];
  if (tid < n_vecs) slot_of[tid] = a.slots[t0 + tid];
  load_codebooks(c, cb, tid);
  // A local copy: stores to shared memory below cannot alias it, so the compiler keeps
  // the rotation's pointers in registers.
  const RotationDesc rot = a.rotations[side][head];
  // A launch of both sides may split one that has no dense rotation: its rank 0 takes the
  // whole tile (the kind is uniform over the cluster, which shares side and head).
  const bool split = kSplit && rot.kind == RotationKind::dense;
  if (kSplit && !split && rank != 0) return;
  if (split) {  // the slice's loads go first, in flight with the inputs'
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(slice));
    for (int e = tid; e < QuantizeSplit<D>::kSliceFloats / 4; e += kTileThreads) {
      const float* src = rot.matrix_t + (e / 8) * D + 32 * rank + 4 * (e % 8);
      cp_async16(dst + 16 * e, src);
    }
    cp_async_commit();
  }

  if (a.vector_loads) {
    for (int e = tid; e < Tile::kVecs * D / 8; e += kTileThreads) {
      const int v = e / (D / 8), i = (e % (D / 8)) * 8;
      float f[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      if (v < n_vecs) load8(a.src[side], (t0 + v) * a.token_stride + head * D + i, a.dtype, f);
      *reinterpret_cast<float4*>(x + v * XS + i) = make_float4(f[0], f[1], f[2], f[3]);
      *reinterpret_cast<float4*>(x + v * XS + i + 4) = make_float4(f[4], f[5], f[6], f[7]);
    }
  } else {
    for (int e = tid; e < Tile::kVecs * D; e += kTileThreads) {
      const int v = e / D, i = e % D;
      x[v * XS + i] = v < n_vecs ? load_element(a.src[side], (t0 + v) * a.token_stride + head * D + i, a.dtype) : 0.f;
    }
  }
  __syncthreads();
  if (rank == 0) refuse_nonfinite<D>(a, side, head, t0, x, n_vecs, slot_of, refused, clamped);
  if (side == 0 && a.frames.range > 0) {  // keys in RoPE frames: turned back by their frame's start
    __syncthreads();  // refuse_nonfinite has read x
    const int last = a.frames.n_frames - 1;
    turn_into_frames<D, XS>(a.frames, x, n_vecs,
                            [&](int v) { return min(max(a.positions[t0 + v], 0) / a.frames.range, last); });
    __syncthreads();
  }
  if (rot.mu) {  // affine map: y = P (x − μ), centred first as Codec::to_code
    __syncthreads();
    for (int e = tid; e < Tile::kVecs * D; e += kTileThreads)
      x[(e / D) * XS + e % D] = __fsub_rn(x[(e / D) * XS + e % D], rot.mu[e % D]);
  }
  if (split) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    namespace cg = cooperative_groups;
    cp_async_wait<0>();
    // Every rank has started (its shared memory exists) and has its inputs and slice.
    cg::this_cluster().sync();
    dense_slice_rows<D, Tile::kVecs>(slice, x, n_vecs, cg::this_cluster().map_shared_rank(y, 0), rank);
    cg::this_cluster().sync();  // every rank's rows are in rank 0's y
    if (rank != 0) return;
#endif
  } else {
    rotate_forward_tile<D, Tile::kVecs>(rot, x, y, n_vecs, y);  // y is free until written
    __syncthreads();
  }
  if (a.sinks[side]) {  // sink positions keep their exact code-space rows (Codec::to_code)
    for (int e = tid; e < n_vecs * D; e += kTileThreads) {
      const int v = e / D, i = e % D, t = t0 + v;
      const int pos = a.positions[t], seq = a.seq_ids[t];
      if (pos >= 0 && pos < a.sink_tokens && seq >= 0 && seq < a.sink_seqs && slot_of[v] >= 0 && !refused[v])
        a.sinks[side][((static_cast<int64_t>(seq) * a.sink_tokens + pos) * a.n_kv + head) * D + i] = y[v * S + i];
    }
  }
  if (c.kind == QuantKind::mse)
    encode_mse<D>(c, cb, y, rec, codes, n_vecs, clamped);
  else if (c.kind == QuantKind::grouped)
    encode_grouped<D>(c, y, rec, n_vecs, clamped);
  else
    encode_blocks<D>(c, y, rec, n_vecs, clamped);
  __syncthreads();

  // One warp per record, 16-bit stores where records have even sizes (so even offsets),
  // bytes otherwise (calibrated records may be odd).
  const int rb2 = c.record_bytes / 2;
  const bool odd = (c.record_bytes & 1) != 0;
  for (int v = warp; v < n_vecs; v += kTileThreads / 32) {
    const int slot = slot_of[v];
    if (slot < 0 || refused[v]) continue;
    if (lane == 0 && clamped[v]) atomicAdd(&a.status->saturated, 1ull);
    const int64_t block = slot / a.block_tokens, tok = slot % a.block_tokens;
    uint16_t* dst = reinterpret_cast<uint16_t*>(a.pool[side] + block * a.block_bytes[side] +
                                                (head * a.block_tokens + tok) * c.record_bytes);
    const uint16_t* src = reinterpret_cast<const uint16_t*>(rec + v * c.record_bytes);
    if (odd) {
      uint8_t* dst8 = reinterpret_cast<uint8_t*>(dst);
      const uint8_t* src8 = rec + v * c.record_bytes;
      for (int k = lane; k < c.record_bytes; k += 32) dst8[k] = src8[k];
      continue;
    }
    for (int k = lane; k < rb2; k += 32) dst[k] = src[k];
  }
}

// split: the dense product over a cluster (QuantizeSplit); the caller asks pdl_supported.
template <int D>
void launch_quantize(const QuantizeArgs& a, int n_sides, bool split, cudaStream_t stream) {
  using Tile = QuantizeTile<D>;
  static_assert(Tile::kSmem <= 48 * 1024, "quantize tile must fit the default shared memory");
  const int tiles = (a.n_tokens + Tile::kVecs - 1) / Tile::kVecs;
  if (!split) {
    quantize_kernel<D, false><<<dim3(tiles, a.n_kv, n_sides), kTileThreads, Tile::kSmem, stream>>>(a);
    check_launch("quantize_kernel");
    return;
  }
  using Split = QuantizeSplit<D>;
  ensure_mma_smem(reinterpret_cast<const void*>(&quantize_kernel<D, true>), static_cast<int>(Split::kSmem));
  launch_clustered(&quantize_kernel<D, true>, dim3(tiles * Split::kCtas, a.n_kv, n_sides), dim3(kTileThreads),
                   Split::kSmem, stream, a, Split::kCtas, "quantize_kernel (dense product split over a cluster)");
}

}  // namespace

// Why `k` cannot write the layer's side ("" when it can). The tiled kernel has no fp8
// encoder; the warp kernel keeps no code-space rows (sinks need them), no group or
// calibrated codecs and no affine map.
std::string quantize_unsupported(const DeviceKvCache& cache, int layer, int side, QuantizeKernel k) {
  if (k == QuantizeKernel::auto_) return "";
  const KvCacheConfig& cfg = cache.config();
  const auto& s = cache.impl().layers[layer][side];
  const std::string codec = std::string(side ? "V" : "K") + " codec " + cache.plan().side(layer, side == 1).codec;
  if (k == QuantizeKernel::tiled)
    return s.desc.kind == QuantKind::fp8 ? "the tiled quantize kernel does not take " + codec +
                                               " (no fp8 encoder: the warp kernel writes fp8)"
                                         : "";
  if (k == QuantizeKernel::tensor) {
    if (!quantize_dense_mma_applies(s.desc, s.rot_kind, cfg.head_dim) ||
        cache.plan().side(layer, side == 1).codecs.front().affine())
      return "the tensor-core quantize kernel does not take " + codec + " at head size " +
             std::to_string(cfg.head_dim) + " (dense rotations with mse codes, head sizes 64 and 128)";
    if (cfg.sink_tokens > 0)
      return "the tensor-core quantize kernel keeps no attention sinks (sink_tokens = " +
             std::to_string(cfg.sink_tokens) + ")";
    if (side == 0 && s.frames.range > 0)
      return "the tensor-core quantize kernel does not turn keys into RoPE frames (" + codec + ", rope_range " +
             std::to_string(s.frames.range) + "): tiled only";
    return "";
  }
  if (cfg.sink_tokens > 0)
    return "the warp quantize kernel keeps no attention sinks (sink_tokens = " + std::to_string(cfg.sink_tokens) + ")";
  if (side == 0 && s.frames.range > 0)
    return "the warp quantize kernel does not turn keys into RoPE frames (" + codec + ", rope_range " +
           std::to_string(s.frames.range) + "): tiled only";
  if (!quantize_warp_applies(s.desc, s.rot_kind, cfg.head_dim) ||
      cache.plan().side(layer, side == 1).codecs.front().affine())
    return "the warp quantize kernel does not take " + codec + " at head size " + std::to_string(cfg.head_dim) +
           " (group and calibrated codecs, affine maps, rotated fp8 and dense rotations above head size " +
           std::to_string(detail::kWarpDenseMaxDim) + ": tiled only)";
  return "";
}

}  // namespace detail

const char* kernel_name(QuantizeKernel k) {
  switch (k) {
    case QuantizeKernel::tiled: return "tiled";
    case QuantizeKernel::warp: return "warp";
    case QuantizeKernel::tensor: return "tensor";
    default: return "auto";
  }
}

std::string quantize_kernel_unsupported(const DeviceKvCache& cache, int layer, int side, QuantizeKernel k) {
  if (layer < 0 || layer >= cache.config().n_layers || side < 0 || side > 1)
    throw Error("quantize_kernel_unsupported: layer " + std::to_string(layer) + " side " + std::to_string(side) +
                " out of range");
  return detail::quantize_unsupported(cache, layer, side, k);
}

namespace {

// TQ_CUDA_QUANTIZE=tiled|warp|tensor overrides QuantizeKernel::auto_ (read once).
QuantizeKernel env_quantize_kernel() {
  static const QuantizeKernel k = detail::env_override<QuantizeKernel>(
      "TQ_CUDA_QUANTIZE", "quantize-on-write", "QuantizeParams::kernel",
      {{"tiled", QuantizeKernel::tiled}, {"warp", QuantizeKernel::warp}, {"tensor", QuantizeKernel::tensor}});
  return k;
}

}  // namespace

void quantize_on_write(DeviceKvCache& cache, const QuantizeParams& p) {
  const KvCacheConfig& cfg = cache.config();
  auto fail = [](const std::string& m) { throw Error("quantize_on_write: " + m); };
  if (p.layer < 0 || p.layer >= cfg.n_layers) fail("layer " + std::to_string(p.layer) + " out of range");
  if (p.n_tokens < 0) fail("n_tokens is negative");
  if (p.n_tokens == 0) return;
  if (!p.keys || !p.values || !p.slots) fail("keys, values and slots must be device pointers");
  if (p.token_stride != 0 && p.token_stride < static_cast<int64_t>(cfg.n_kv_heads) * cfg.head_dim)
    fail("token_stride is smaller than n_kv_heads * head_dim");
  detail::QuantizeArgs a{};
  const auto& layer = cache.impl().layers[p.layer];
  for (int s = 0; s < 2; ++s) {
    a.codec[s] = layer[s].desc;
    a.rotations[s] = layer[s].enc_rotations;
    a.pool[s] = layer[s].pool;
    a.block_bytes[s] = static_cast<int64_t>(layer[s].block_bytes);
    a.sinks[s] = layer[s].sinks;
  }
  if (cfg.sink_tokens > 0) {
    if (!p.positions) fail("the cache keeps sink_tokens = " + std::to_string(cfg.sink_tokens) +
                           " exact positions: QuantizeParams::positions is required");
    if (!p.seq_ids) fail("the cache keeps sink_tokens = " + std::to_string(cfg.sink_tokens) +
                         " exact positions: QuantizeParams::seq_ids is required");
  }
  const detail::FrameDesc& frames = layer[0].frames;
  if (frames.range > 0 && !p.positions)
    fail("layer " + std::to_string(p.layer) + " keeps its keys in RoPE frames (rope_range " +
         std::to_string(frames.range) + "): QuantizeParams::positions is required");
  a.frames = frames;
  a.positions = p.positions;
  a.seq_ids = p.seq_ids;
  a.sink_tokens = cfg.sink_tokens;
  a.sink_seqs = cache.num_blocks();
  a.status = cache.impl().status + p.layer;
  a.src[0] = p.keys;
  a.src[1] = p.values;
  a.dtype = static_cast<int>(p.dtype);
  a.n_tokens = p.n_tokens;
  a.token_stride = p.token_stride ? p.token_stride : static_cast<int64_t>(cfg.n_kv_heads) * cfg.head_dim;
  a.slots = p.slots;
  a.n_kv = cfg.n_kv_heads;
  a.block_tokens = cfg.block_tokens;
  const int elem = p.dtype == DType::f32 ? 4 : 2;
  auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  a.vector_loads = aligned(p.keys) && aligned(p.values) && (a.token_stride * elem) % 16 == 0 ? 1 : 0;
  a.block_shift = (cfg.block_tokens & (cfg.block_tokens - 1)) == 0 ? __builtin_ctz(cfg.block_tokens) : -1;
  auto stream = static_cast<cudaStream_t>(p.stream);
  // auto_: each side goes to the warp-per-vector kernel where it applies, except a dense
  // rotation on a write whose tiles would fill the GPU: that one takes the tensor-core
  // kernel where it applies; everything else the tiled one. K and V share a launch when
  // they go the same way.
  static const bool clusters = detail::pdl_supported();
  const int sms = cache.impl().sm_count;
  // Whether the tiles of a launch of n_sides leave SMs idle (docs/CUDA.md, "Tiled").
  auto tiles_leave_sms_idle = [&](int n_sides) {
    return dispatch_head_dim(cfg.head_dim, "quantize_on_write", [&]<int D>() {
      return detail::ctas_leave_sms_idle(a.n_tokens, detail::QuantizeTile<D>::kVecs, a.n_kv, n_sides, sms);
    });
  };
  const bool small = tiles_leave_sms_idle(2);
  const QuantizeKernel asked = p.kernel == QuantizeKernel::auto_ ? env_quantize_kernel() : p.kernel;
  QuantizeKernel route[2];
  for (int s = 0; s < 2; ++s) {
    a.rot_kind[s] = layer[s].rot_kind;
    a.rot_rounds[s] = layer[s].rot_rounds;
    const std::string why = detail::quantize_unsupported(cache, p.layer, s, asked);
    if (!why.empty()) fail(why);
    route[s] = asked;
    if (asked != QuantizeKernel::auto_) continue;
    // A dense rotation's exact product takes the warp kernel only for small writes.
    const bool dense = layer[s].rot_kind == RotationKind::dense;
    if ((small || !dense) && detail::quantize_unsupported(cache, p.layer, s, QuantizeKernel::warp).empty())
      route[s] = QuantizeKernel::warp;
    else if (!small && detail::quantize_unsupported(cache, p.layer, s, QuantizeKernel::tensor).empty())
      route[s] = QuantizeKernel::tensor;
    else
      route[s] = QuantizeKernel::tiled;
  }
  auto run = [&](QuantizeKernel k, int first, int n_sides) {
    a.first_side = first;
    if (k == QuantizeKernel::warp) {
      detail::launch_quantize_warp(a, cfg.head_dim, n_sides, sms, stream);
      return;
    }
    if (k == QuantizeKernel::tensor) {
      detail::launch_quantize_dense_mma(a, cfg.head_dim, n_sides, sms, stream);
      return;
    }
    // A dense rotation's exact product splits over a cluster where clusters exist (9.0)
    // and the plain tiles would leave SMs idle (docs/CUDA.md, "Tiled").
    const bool split = detail::launch_has_dense(a, n_sides) && clusters && tiles_leave_sms_idle(n_sides);
    dispatch_head_dim(cfg.head_dim, "quantize_on_write",
                      [&]<int D>() { detail::launch_quantize<D>(a, n_sides, split, stream); });
  };
  if (route[0] == route[1]) {
    run(route[0], 0, 2);
  } else {
    run(route[0], 0, 1);
    run(route[1], 1, 1);
  }
  if (p.check) {
    detail::check_cuda(cudaStreamSynchronize(stream), "quantize_on_write (waiting to check the inputs)");
    detail::check_write_status(cache.impl(), "quantize_on_write");
  }
}

}  // namespace tq::cuda
