// Quantize-on-write on warps: the warp first copies the raw inputs of all its tokens into
// shared memory with cp.async (every load in flight at once: one token's round trip at a
// time had left the kernel latency-bound, at 43% of copy bandwidth for q8_0). Large
// writes (several tokens per warp) of unrotated and rht records, and unrotated plain
// records at any size, then take one 32-coordinate block per lane (quantize_lanes.cuh).
// The others take the tokens one by one: a lane reads D/32 consecutive inputs, the warp
// rotates and encodes the vector in registers (lane owns coordinates lane + 32k, as the
// shuffle Hadamard needs) and stages only the record in shared memory before one
// coalesced copy into its slot. No CTA-wide barriers after the codebook is loaded, so
// loads of one warp overlap the arithmetic of the others.
// Arithmetic is the tiled kernel's (quantize.cu), step for step, so records stay
// byte-identical to Codec::encode; group and calibrated codecs stay there. Dense
// rotations up to d = 128 run here one token per warp over Qᵀ staged in shared memory
// (auto_: small writes only, quantize.cu).
#include <cuda_fp8.h>

#include <string>

#include "codebook_device.cuh"
#include "cuda_check.h"
#include "decode_args.h"
#include "quantize_lanes.cuh"
#include "warp_encode.cuh"
#include "turboquant/head_dim.h"

namespace tq::cuda::detail {

namespace {

constexpr int kWarps = 8;

template <int D>
struct WarpShape {
  static constexpr int kTokens = D <= 128 ? 8 : 4;  // a warp's tokens: 4 KB of f32 inputs
};

// A staged row's pitch: the raw inputs plus 16 bytes, so that the tokens' lanes reading
// one coordinate of their rows (the lane-block gathers) fall in different banks.
__host__ __device__ constexpr int row_pitch(int D, int dtype) { return (D << (dtype == 0 ? 2 : 1)) + 16; }

template <int D>
struct WarpSmem {
  alignas(16) uint8_t in[WarpShape<D>::kTokens * row_pitch(D, 0)];  // the warp's raw inputs, a row per token
  alignas(16) float x[D];
  alignas(16) uint8_t rec[2 * D + 16];  // the largest record (f16) plus slack
};

// y[k] = (R x)[lane + 32k] with x in shared memory; rotate_forward_tile's arithmetic.
// `kind` and `rounds` come from the kernel parameters, so the compiler knows the branches
// are warp-uniform (read from the descriptor in global memory they made every shuffle
// below a possibly-divergent collective).
// qt: a dense rotation's Qᵀ, staged in shared memory by the kernel.
template <int D>
__device__ inline void rotate(RotationKind kind, int rounds, const RotationDesc& r, const float* qt, const float* x,
                              float* y, int lane) {
  constexpr int K = D / 32;
  switch (kind) {
    case RotationKind::rht: {
#pragma unroll
      for (int k = 0; k < K; ++k) y[k] = x[__ldg(r.perm + lane + 32 * k)];
      for (int round = 0; round < rounds; ++round) {
#pragma unroll
        for (int k = 0; k < K; ++k) y[k] = __fmul_rn(y[k], __ldg(r.signs + round * D + lane + 32 * k));
#pragma unroll
        for (int h = 1; h < 32; h <<= 1) {
          const bool upper = (lane & h) != 0;
#pragma unroll
          for (int k = 0; k < K; ++k) {
            const float other = __shfl_xor_sync(kFull, y[k], h);
            y[k] = upper ? __fsub_rn(other, y[k]) : __fadd_rn(y[k], other);
          }
        }
#pragma unroll
        for (int hk = 1; hk < K; hk <<= 1)
#pragma unroll
          for (int k = 0; k < K; ++k)
            if ((k & hk) == 0) {
              const float a0 = y[k], b0 = y[k + hk];
              y[k] = __fadd_rn(a0, b0);
              y[k + hk] = __fsub_rn(a0, b0);
            }
#pragma unroll
        for (int k = 0; k < K; ++k) y[k] = __fmul_rn(y[k], r.scale);
      }
      break;
    }
    case RotationKind::rotor3:
    case RotationKind::quat4:
    case RotationKind::quat4_left:
    case RotationKind::givens2:
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const BlockRow* row_p = r.rows + lane + 32 * k;
        const int off = __ldg(&row_p->off), size = __ldg(&row_p->size);
        float m[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) m[j] = __ldg(&row_p->m[j]);
        float s = 0.f;
#pragma unroll
        for (int j = 0; j < 4; ++j)  // constant indices keep row.m out of local memory
          if (j < size) s = __fadd_rn(s, __fmul_rn(m[j], x[off + j]));
        y[k] = s;
      }
      break;
    case RotationKind::dense:
      // y_i = sum_j Q[i][j] x_j in ascending j, every product and sum rounded on its own
      // (DenseRotation::forward's order); row j of Qᵀ is Q's column j, so a step reads K
      // conflict-free rows of shared memory.
#pragma unroll
      for (int k = 0; k < K; ++k) y[k] = 0.f;
#pragma unroll 8
      for (int j = 0; j < D; ++j) {
        const float xj = x[j];
#pragma unroll
        for (int k = 0; k < K; ++k) y[k] = __fadd_rn(y[k], __fmul_rn(qt[j * D + lane + 32 * k], xj));
      }
      break;
    default:  // none
#pragma unroll
      for (int k = 0; k < K; ++k) y[k] = x[lane + 32 * k];
  }
}

// The record of y (lane's coordinates lane + 32k) into rec, quantize.cu's arithmetic.
// `clamped` is set on the lanes that saturated a field.
template <int D>
__device__ inline void encode(const CodecDesc& c, const SharedCodebooks& cb, const float* y, uint8_t* rec, int lane,
                              bool& clamped) {
  constexpr int K = D / 32;
  switch (c.kind) {
    case QuantKind::mse: {
      double n2 = 0;
#pragma unroll
      for (int k = 0; k < K; ++k) n2 += static_cast<double>(y[k]) * y[k];
#pragma unroll
      for (int off = 16; off >= 1; off >>= 1) n2 += __shfl_xor_sync(kFull, n2, off);
      const float norm = static_cast<float>(sqrt(n2));
      const float inv = reciprocal_or_zero(norm);
      double c2 = 0;
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const int i = lane + 32 * k;
        const int half = i < c.n_hi ? 0 : 1;
        const int bits = half ? c.bits_lo : c.bits_hi;
        const int idx = bucketize(__fmul_rn(y[k], inv), cb.bounds[half], bits);
        const float l = cb.levels[half][idx];
        c2 += static_cast<double>(l) * l;
        // Eight codes of b bits are b whole bytes: OR the group's codes together, then
        // lanes 0..b-1 of the group each store one byte.
        uint32_t w = static_cast<uint32_t>(idx) << ((lane & 7) * bits);
        w |= __shfl_xor_sync(kFull, w, 1);
        w |= __shfl_xor_sync(kFull, w, 2);
        w |= __shfl_xor_sync(kFull, w, 4);
        const int group = i >> 3;
        const int byte0 = half ? c.lo_offset + (group - c.n_hi / 8) * bits : c.hi_offset + group * bits;
        if ((lane & 7) < bits) rec[byte0 + (lane & 7)] = static_cast<uint8_t>(w >> (8 * (lane & 7)));
      }
      if (c.corrected) {
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) c2 += __shfl_xor_sync(kFull, c2, off);
      }
      if (lane == 0)
        store_half_field(rec, c.corrected && norm > 0.f ? static_cast<float>(static_cast<double>(norm) / sqrt(c2)) : norm,
                         clamped);
      break;
    }
    case QuantKind::q8_0:
#pragma unroll
      for (int k = 0; k < K; ++k) {
        float amax = fabsf(y[k]);
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, off));
        const float d = __fdiv_rn(amax, 127.f);
        const float id = reciprocal_or_zero(d);
        uint8_t* out = rec + 34 * k;
        if (lane == 0) store_half_field(out, d, clamped);
        out[2 + lane] = static_cast<uint8_t>(static_cast<int8_t>(roundf(__fmul_rn(y[k], id))));
      }
      break;
    case QuantKind::q4_0:
#pragma unroll
      for (int k = 0; k < K; ++k) {
        // The first element of largest magnitude (with its sign), as the reference's
        // strict comparison in index order.
        const bool nz = fabsf(y[k]) > 0.f;  // zeros never win: mx stays +0 as in the reference
        float amax = nz ? fabsf(y[k]) : 0.f, mx = nz ? y[k] : 0.f;
        int at = nz ? lane : 32;
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) {
          const float oa = __shfl_xor_sync(kFull, amax, off), om = __shfl_xor_sync(kFull, mx, off);
          const int oat = __shfl_xor_sync(kFull, at, off);
          if (oa > amax || (oa == amax && oat < at)) amax = oa, mx = om, at = oat;
        }
        const float d = __fdiv_rn(mx, -8.f);
        const float id = reciprocal_or_zero(d);
        const int q = min(15, static_cast<int>(__fadd_rn(__fmul_rn(y[k], id), 8.5f)));
        const int q_hi = __shfl_down_sync(kFull, q, 16);
        uint8_t* out = rec + 18 * k;
        if (lane == 0) store_half_field(out, d, clamped);
        if (lane < 16) out[2 + lane] = static_cast<uint8_t>(q | (q_hi << 4));
      }
      break;
    default:  // f16
#pragma unroll
      for (int k = 0; k < K; ++k) store_half_field(rec + 2 * (lane + 32 * k), y[k], clamped);
  }
}

// kLanes: a launch of several tokens per warp whose sides are all unrotated or rht: one
// block per lane for every codec (quantize_lanes.cuh). Otherwise only unrotated plain
// records take a block per lane, the rest one vector per warp. kMinCtas: the CTAs per SM
// the registers must allow. Launches of several tokens per warp take four (64 registers),
// small writes one: one kernel for both, capped, made small writes 6-12% slower, and the
// small-write kernel's 71 registers at d = 128 made large block-rotation writes 7-9%
// slower (BENCHMARKS.md, session 26).
template <int D, bool kLanes, int kMinCtas>
__global__ void __launch_bounds__(kWarps * 32, kMinCtas)
    quantize_warp_kernel(const __grid_constant__ QuantizeArgs a) {
  constexpr int E = D / 32, K = D / 32;
  __shared__ SharedCodebooks cb;
  __shared__ WarpSmem<D> ws[kWarps];
  __shared__ alignas(16) uint32_t signed_perm[kLanes ? D : 4];  // the lane blocks' rht table
  extern __shared__ __align__(16) float qt[];  // a dense rotation's Qᵀ (D² floats), else empty
  const int side = a.first_side + blockIdx.z, head = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const CodecDesc& c = a.codec[side];
  const RotationDesc rot = a.rotations[side][head];
  const RotationKind kind = a.rot_kind[side];
  if (!kLanes && kind == RotationKind::dense) {  // in flight with the inputs' copies; waited for below
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(qt));
    for (int e = threadIdx.x; e < D * D / 4; e += kWarps * 32) cp_async16(dst + 16 * e, rot.matrix_t + 4 * e);
    cp_async_commit();
  }
  load_codebooks(c, cb, threadIdx.x);
  if (kLanes && kind == RotationKind::rht)
    for (int i = threadIdx.x; i < D; i += kWarps * 32) signed_perm[i] = signed_perm_entry(rot, i);
  const int t0 = (blockIdx.x * kWarps + warp) * a.warp_tokens;
  const int n = max(0, min(a.warp_tokens, a.n_tokens - t0));
  const int my_slot = lane < n ? a.slots[t0 + lane] : -1;  // lane j holds token t0 + j's slot
  const int pitch = row_pitch(D, a.dtype);
  stage_inputs<D>(a, side, head, t0, n, ws[warp].in, pitch, lane);
  cp_async_wait<0>();  // Qᵀ's copies (stage_inputs waits only where it issued copies itself)
  __syncthreads();  // the codebooks, Qᵀ and the rht table
  if (kLanes || (kind == RotationKind::none && c.kind != QuantKind::mse)) {
    encode_lane_blocks<D, WarpShape<D>::kTokens, kLanes>(a, c, cb, rot, signed_perm, side, head, t0, n, ws[warp].in,
                                                         pitch, my_slot, lane);
    return;
  }
  if constexpr (kLanes) return;
  const int rb = c.record_bytes;
  float* xs = ws[warp].x;
  uint8_t* rec = ws[warp].rec;
  for (int j = 0; j < n; ++j) {
    const int t = t0 + j, slot = __shfl_sync(kFull, my_slot, j);
    if (slot < 0) continue;  // uniform: every lane holds the same slot
    float v[E];
    load_lane<E>(ws[warp].in + j * pitch, lane * E, a.dtype, v);
    if (refuse_nonfinite<E>(a, v, t, side, head, lane)) continue;  // reported, never written
    uint8_t* dst = record_at(a, side, head, slot, rb);
    bool clamped = false;
    if constexpr (E % 4 == 0) {
#pragma unroll
      for (int q = 0; q < E / 4; ++q)
        reinterpret_cast<float4*>(xs + lane * E)[q] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
    } else {
      *reinterpret_cast<float2*>(xs + lane * E) = make_float2(v[0], v[1]);
    }
    __syncwarp();
    float y[K];
    rotate<D>(a.rot_kind[side], a.rot_rounds[side], rot, qt, xs, y, lane);
    encode<D>(c, cb, y, rec, lane, clamped);
    if (__any_sync(kFull, clamped) && lane == 0) atomicAdd(&a.status->saturated, 1ull);
    __syncwarp();
    const uint16_t* src = reinterpret_cast<const uint16_t*>(rec);
    for (int o = lane; o < rb / 2; o += 32) reinterpret_cast<uint16_t*>(dst)[o] = src[o];
    __syncwarp();  // rec and xs are reused by the next vector
  }
}

}  // namespace

bool quantize_warp_applies(const CodecDesc& c, RotationKind rotation, int d) {
  if (rotation == RotationKind::dense && d > kWarpDenseMaxDim) return false;
  switch (c.kind) {
    case QuantKind::f16:
    case QuantKind::q8_0:
    case QuantKind::q4_0:
    case QuantKind::mse: return true;
    case QuantKind::fp8: return rotation == RotationKind::none;
    default: return false;
  }
}

void launch_quantize_warp(const QuantizeArgs& args, int d, int n_sides, int sm_count, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  QuantizeArgs a = args;
  const bool dense = launch_has_dense(a, n_sides);
  dispatch_head_dim(d, "quantize_on_write (warp kernel)", [&]<int D>() {
    static_assert(sizeof(WarpSmem<D>) * kWarps + sizeof(SharedCodebooks) <= 48 * 1024, "fits the default shared memory");
    const void* kernel = reinterpret_cast<const void*>(&quantize_warp_kernel<D, false, 1>);
    // A dense product is D² multiply-adds per vector over Qᵀ in shared memory: one token
    // per warp spreads a small write over as many warps as it has vectors.
    size_t smem = 0;
    if (dense) {
      if (D > kWarpDenseMaxDim) throw Error("quantize_on_write (warp kernel): no dense rotation at head size " +
                                            std::to_string(D));
      smem = size_t{D} * D * sizeof(float);
      ensure_mma_smem(kernel, static_cast<int>(smem));
    }
    // A write whose CTAs of kTokens per warp would leave SMs idle (a decode step, a short
    // chunk) takes one token per warp too: more CTAs, each warp's chain of tokens shorter.
    a.warp_tokens =
        dense || ctas_leave_sms_idle(a.n_tokens, kWarps * WarpShape<D>::kTokens, a.n_kv, n_sides, sm_count)
            ? 1
            : WarpShape<D>::kTokens;
    const int per_cta = kWarps * a.warp_tokens;
    const dim3 grid((a.n_tokens + per_cta - 1) / per_cta, a.n_kv, n_sides);
    const bool lanes = a.warp_tokens > 1 && !launch_any_rotation(a, n_sides, [](RotationKind k) {
      return k != RotationKind::none && k != RotationKind::rht;
    });
    if (lanes)
      quantize_warp_kernel<D, true, 4><<<grid, kWarps * 32, 0, s>>>(a);
    else if (a.warp_tokens > 1)
      quantize_warp_kernel<D, false, 4><<<grid, kWarps * 32, 0, s>>>(a);  // never dense: one token per warp
    else
      quantize_warp_kernel<D, false, 1><<<grid, kWarps * 32, smem, s>>>(a);
  });
  check_launch("quantize_warp_kernel");
}

}  // namespace tq::cuda::detail
