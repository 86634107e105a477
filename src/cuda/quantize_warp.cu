// Quantize-on-write, one warp per vector: the warp first copies the raw inputs of all its
// tokens into shared memory with cp.async (every load in flight at once: one token's
// round trip at a time had left the kernel latency-bound, at 43% of copy bandwidth for
// q8_0), then takes the tokens one by one. A lane reads D/32 consecutive inputs, the warp
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
#include "warp_encode.cuh"
#include "turboquant/head_dim.h"

namespace tq::cuda::detail {

namespace {

constexpr int kWarps = 8;

template <int D>
struct WarpShape {
  static constexpr int kTokens = D <= 128 ? 8 : 4;  // a warp's tokens: 4 KB of f32 inputs
};

template <int D>
struct WarpSmem {
  alignas(16) uint8_t in[WarpShape<D>::kTokens * D * 4];  // the warp's raw inputs, token after token
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

// Unrotated q8_0 / q4_0 / f16 / fp8 records of all the warp's staged tokens at once, one
// 32-coordinate block per lane (lane = token · D/32 + block): each lane runs the
// reference's loop over its block alone, so a block costs one lane what took the whole
// warp (one vector at a time, ~160 warp instructions per d = 128 vector with its shuffles).
// The D/32 lanes of a token share NaN/Inf refusal, fp8's vector scale and the saturation
// count through shuffles. The records are built over the staged inputs (each lane has
// read its block first) and leave in one coalesced copy: a lane storing its own 34-byte
// block straight into the pool had made every store touch 32 sectors (q8_0 at 262K
// vectors: 217 us against 79 for the warp-wide encoder). Arithmetic as the tiled kernel's
// encode_blocks and Fp8Quantizer.
template <int D>
__device__ inline void encode_plain_blocks(const QuantizeArgs& a, const CodecDesc& c, int side, int head, int t0, int n,
                                           uint8_t* in, int my_slot, int lane) {
  constexpr int BPV = D / 32, T = WarpShape<D>::kTokens;
  static_assert(T * BPV <= 32, "a lane per block");
  const int j = lane / BPV, b = lane % BPV;
  const int slot = __shfl_sync(kFull, my_slot, j);
  const bool live = lane < T * BPV && j < n && slot >= 0;
  float x[32];
  if (live) {
    load_lane<32>(in + ((j * D) << (a.dtype == 0 ? 2 : 1)), 32 * b, a.dtype, x);
  } else {
#pragma unroll
    for (int e = 0; e < 32; ++e) x[e] = 0.f;
  }
  // NaN/Inf inputs are refused (docs/FORMATS.md, "Range"): the token's first bad
  // coordinate is reported by the lane holding it, the count by the token's block 0.
  int bad = 32;
  float bad_x = 0.f;
#pragma unroll
  for (int e = 31; e >= 0; --e)
    if (!isfinite(x[e])) bad = e, bad_x = x[e];
  int first = bad < 32 ? 32 * b + bad : D;
#pragma unroll
  for (int off = 1; off < BPV; off <<= 1) first = min(first, __shfl_xor_sync(kFull, first, off));
  if (live && first < D) {
    if (first / 32 == b) note_bad_value(a.status, t0 + j, side, head, first, bad_x);
    if (b == 0) atomicAdd(&a.status->nonfinite, 1ull);
  }
  const bool write = live && first == D;
  float amax = 0.f;
#pragma unroll
  for (int e = 0; e < 32; ++e) amax = fmaxf(amax, fabsf(x[e]));
  bool clamped = false;
  const int rb = c.record_bytes;  // even; T records fit in the staged inputs' rows
  uint8_t* dst = in + j * rb;
  __syncwarp();  // every lane holds its inputs: their rows take the records
  if (c.kind == QuantKind::fp8) {  // [fp16 s][D E4M3 codes]: one scale for the vector
#pragma unroll
    for (int off = 1; off < BPV; off <<= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, off));
    if (write) {
      const uint16_t sb = fp8_scale_bits(amax, clamped);
      const float inv = reciprocal_or_zero(__half2float(__ushort_as_half(sb)));
      if (b == 0) *reinterpret_cast<uint16_t*>(dst) = sb;
#pragma unroll
      for (int e = 0; e < 32; e += 2)
        *reinterpret_cast<uint16_t*>(dst + 2 + 32 * b + e) = __nv_cvt_float2_to_fp8x2(
            make_float2(__fmul_rn(x[e], inv), __fmul_rn(x[e + 1], inv)), __NV_SATFINITE, __NV_E4M3);
    }
  } else if (write && c.kind == QuantKind::f16) {
    uint32_t* out = reinterpret_cast<uint32_t*>(dst + 64 * b);
#pragma unroll
    for (int e = 0; e < 32; e += 2)
      out[e / 2] = half_field_bits(x[e], clamped) | static_cast<uint32_t>(half_field_bits(x[e + 1], clamped)) << 16;
  } else if (write && c.kind == QuantKind::q8_0) {
    const float d = __fdiv_rn(amax, 127.f);
    const float id = reciprocal_or_zero(d);
    uint8_t* out = dst + 34 * b;
    store_half_field(out, d, clamped);
#pragma unroll
    for (int e = 0; e < 32; e += 2) {
      const uint32_t q0 = static_cast<uint8_t>(static_cast<int8_t>(roundf(__fmul_rn(x[e], id))));
      const uint32_t q1 = static_cast<uint8_t>(static_cast<int8_t>(roundf(__fmul_rn(x[e + 1], id))));
      *reinterpret_cast<uint16_t*>(out + 2 + e) = static_cast<uint16_t>(q0 | (q1 << 8));
    }
  } else if (write) {  // q4_0: the first element of largest magnitude, in index order
    float top = 0.f, mx = 0.f;
#pragma unroll
    for (int e = 0; e < 32; ++e)
      if (top < fabsf(x[e])) top = fabsf(x[e]), mx = x[e];
    const float d = __fdiv_rn(mx, -8.f);
    const float id = reciprocal_or_zero(d);
    uint8_t* out = dst + 18 * b;
    store_half_field(out, d, clamped);
#pragma unroll
    for (int e = 0; e < 16; e += 2) {
      const int q0 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[e], id), 8.5f)));
      const int q1 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[e + 1], id), 8.5f)));
      const int h0 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[e + 16], id), 8.5f)));
      const int h1 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[e + 17], id), 8.5f)));
      *reinterpret_cast<uint16_t*>(out + 2 + e) = static_cast<uint16_t>((q0 | (h0 << 4)) | ((q1 | (h1 << 4)) << 8));
    }
  }
  bool any = clamped;
#pragma unroll
  for (int off = 1; off < BPV; off <<= 1) any |= __shfl_xor_sync(kFull, any, off) != 0;  // every lane shuffles
  const unsigned saturated = __ballot_sync(kFull, any && write && b == 0);
  if (lane == 0 && saturated) atomicAdd(&a.status->saturated, static_cast<unsigned long long>(__popc(saturated)));
  const unsigned written = __ballot_sync(kFull, write && b == 0);  // bit j·BPV: token j is written
  __syncwarp();
  // Token r's record, 16-bit words; every lane takes part in the slot shuffle.
  const int words = rb / 2;
  for (int base = 0; base < n * words; base += 32) {
    const int e = base + lane, r = min(e / words, n - 1), o = e - r * words;
    const int slot_r = __shfl_sync(kFull, my_slot, r);
    if (e < n * words && ((written >> (r * BPV)) & 1)) {
      reinterpret_cast<uint16_t*>(record_at(a, side, head, slot_r, rb))[o] =
          reinterpret_cast<const uint16_t*>(in + r * rb)[o];
    }
  }
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32) quantize_warp_kernel(const __grid_constant__ QuantizeArgs a) {
  constexpr int E = D / 32, K = D / 32;
  __shared__ SharedCodebooks cb;
  __shared__ WarpSmem<D> ws[kWarps];
  extern __shared__ __align__(16) float qt[];  // a dense rotation's Qᵀ (D² floats), else empty
  const int side = a.first_side + blockIdx.z, head = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const CodecDesc& c = a.codec[side];
  const RotationDesc rot = a.rotations[side][head];
  if (a.rot_kind[side] == RotationKind::dense) {  // in flight with the inputs' copies; waited for below
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(qt));
    for (int e = threadIdx.x; e < D * D / 4; e += kWarps * 32) cp_async16(dst + 16 * e, rot.matrix_t + 4 * e);
    cp_async_commit();
  }
  load_codebooks(c, cb, threadIdx.x);
  const int t0 = (blockIdx.x * kWarps + warp) * a.warp_tokens;
  const int n = max(0, min(a.warp_tokens, a.n_tokens - t0));
  const int my_slot = lane < n ? a.slots[t0 + lane] : -1;  // lane j holds token t0 + j's slot
  stage_inputs<D>(a, side, head, t0, n, ws[warp].in, D << (a.dtype == 0 ? 2 : 1), lane);
  cp_async_wait<0>();  // Qᵀ's copies (stage_inputs waits only where it issued copies itself)
  __syncthreads();  // the codebooks and Qᵀ
  const int rb = c.record_bytes;
  float* xs = ws[warp].x;
  uint8_t* rec = ws[warp].rec;
  if (a.rot_kind[side] == RotationKind::none && c.kind != QuantKind::mse) {  // no rotation, no staging
    encode_plain_blocks<D>(a, c, side, head, t0, n, ws[warp].in, my_slot, lane);
    return;
  }
  for (int j = 0; j < n; ++j) {
    const int t = t0 + j, slot = __shfl_sync(kFull, my_slot, j);
    if (slot < 0) continue;  // uniform: every lane holds the same slot
    float v[E];
    load_lane<E>(ws[warp].in + ((j * D) << (a.dtype == 0 ? 2 : 1)), lane * E, a.dtype, v);
    // NaN/Inf inputs are refused (docs/FORMATS.md, "Range"): reported, never written.
    int bad = E;
    float bad_x = 0.f;  // not v[bad]: a variable index would put v in local memory
#pragma unroll
    for (int e = E - 1; e >= 0; --e)
      if (!isfinite(v[e])) bad = e, bad_x = v[e];
    if (__any_sync(kFull, bad < E)) {
      if (bad < E) note_bad_value(a.status, t, side, head, lane * E + bad, bad_x);
      if (lane == 0) atomicAdd(&a.status->nonfinite, 1ull);
      continue;
    }
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
    const void* kernel = reinterpret_cast<const void*>(&quantize_warp_kernel<D>);
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
    const int64_t full_ctas = (a.n_tokens + kWarps * WarpShape<D>::kTokens - 1) / (kWarps * WarpShape<D>::kTokens) *
                              int64_t{a.n_kv} * n_sides;
    a.warp_tokens = dense || full_ctas < sm_count ? 1 : WarpShape<D>::kTokens;
    const int per_cta = kWarps * a.warp_tokens;
    const dim3 grid((a.n_tokens + per_cta - 1) / per_cta, a.n_kv, n_sides);
    quantize_warp_kernel<D><<<grid, kWarps * 32, smem, s>>>(a);
  });
  check_launch("quantize_warp_kernel");
}

}  // namespace tq::cuda::detail
