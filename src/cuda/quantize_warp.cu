// Quantize-on-write, one warp per vector: a lane loads D/32 consecutive inputs with one
// or two vector loads, the warp rotates and encodes the vector in registers (lane owns
// coordinates lane + 32k, as the shuffle Hadamard needs) and stages only the record in
// shared memory before one coalesced copy into its slot. No CTA-wide barriers after the
// codebook is loaded, so loads of one warp overlap the arithmetic of the others.
// Arithmetic is the tiled kernel's (quantize.cu), step for step, so records stay
// byte-identical to Codec::encode; dense rotations and group codecs stay there.
#include <cuda_fp8.h>

#include "codebook_device.cuh"
#include "cuda_check.h"
#include "dtype_device.cuh"
#include "quantize_args.h"
#include "range_device.cuh"
#include "turboquant/head_dim.h"

namespace tq::cuda::detail {

namespace {

constexpr int kWarps = 8;
constexpr int kTokensPerWarp = 8;
constexpr unsigned kFull = 0xffffffffu;

template <int D>
struct WarpSmem {
  alignas(16) float x[D];
  alignas(16) uint8_t rec[2 * D + 16];  // the largest record (f16) plus slack
};

// Lane's E consecutive inputs [lane*E, lane*E + E) of one vector.
template <int E>
__device__ inline void load_lane(const void* base, int64_t i, int dtype, bool vec, float* out) {
  if (!vec) {
#pragma unroll
    for (int e = 0; e < E; ++e) out[e] = load_element(base, i + e, dtype);
    return;
  }
  if (dtype == 0) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
    if constexpr (E == 2) {
      const float2 f = *reinterpret_cast<const float2*>(p);
      out[0] = f.x, out[1] = f.y;
    } else {
#pragma unroll
      for (int q = 0; q < E / 4; ++q) {
        const float4 f = p[q];
        out[4 * q] = f.x, out[4 * q + 1] = f.y, out[4 * q + 2] = f.z, out[4 * q + 3] = f.w;
      }
    }
    return;
  }
  uint32_t w[E / 2];
  const uint16_t* p = static_cast<const uint16_t*>(base) + i;
  if constexpr (E == 2) {
    w[0] = *reinterpret_cast<const uint32_t*>(p);
  } else if constexpr (E == 4) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    w[0] = u.x, w[1] = u.y;
  } else {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
  }
  unpack_16bit_pairs<E / 2>(w, dtype, out);
}

// y[k] = (R x)[lane + 32k] with x in shared memory; rotate_forward_tile's arithmetic.
// `kind` and `rounds` come from the kernel parameters, so the compiler knows the branches
// are warp-uniform (read from the descriptor in global memory they made every shuffle
// below a possibly-divergent collective).
template <int D>
__device__ inline void rotate(RotationKind kind, int rounds, const RotationDesc& r, const float* x, float* y, int lane) {
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
    default:  // none (dense rotations never reach this kernel)
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

// Unrotated q8_0 / q4_0 / f16 / fp8 records straight from the lane's E consecutive inputs
// v (coordinates lane*E + e): a 32-block spans 32/E lanes. Written directly to dst.
template <int D>
__device__ inline void encode_plain(const CodecDesc& c, const float* v, uint8_t* dst, int lane, bool& clamped) {
  constexpr int E = D / 32, LPB = 32 / E;  // lanes per 32-block
  const int blk = lane / LPB, p = lane % LPB;
  uint16_t* d16 = reinterpret_cast<uint16_t*>(dst);
  if (c.kind == QuantKind::f16) {
#pragma unroll
    for (int e = 0; e < E; ++e) d16[lane * E + e] = half_field_bits(v[e], clamped);
    return;
  }
  if (c.kind == QuantKind::fp8) {  // [fp16 s][D E4M3 codes], Fp8Quantizer's arithmetic
    float amax = 0.f;
#pragma unroll
    for (int e = 0; e < E; ++e) amax = fmaxf(amax, fabsf(v[e]));
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, off));
    const uint16_t s = fp8_scale_bits(amax, clamped);
    const float inv = reciprocal_or_zero(__half2float(__ushort_as_half(s)));
    if (lane == 0) d16[0] = s;
    // cvt.rn.satfinite.e4m3x2.f32: round to nearest even, saturate to ±448 (float_to_e4m3).
#pragma unroll
    for (int e = 0; e < E; e += 2)
      *reinterpret_cast<uint16_t*>(dst + 2 + lane * E + e) = __nv_cvt_float2_to_fp8x2(
          make_float2(__fmul_rn(v[e], inv), __fmul_rn(v[e + 1], inv)), __NV_SATFINITE, __NV_E4M3);
    return;
  }
  if (c.kind == QuantKind::q8_0) {
    float amax = 0.f;
#pragma unroll
    for (int e = 0; e < E; ++e) amax = fmaxf(amax, fabsf(v[e]));
#pragma unroll
    for (int off = LPB / 2; off >= 1; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, off));
    const float d = __fdiv_rn(amax, 127.f);
    const float id = reciprocal_or_zero(d);
    uint8_t* out = dst + 34 * blk;
    if (p == 0) store_half_field(out, d, clamped);
#pragma unroll
    for (int e = 0; e < E; e += 2) {
      const uint32_t q0 = static_cast<uint8_t>(static_cast<int8_t>(roundf(__fmul_rn(v[e], id))));
      const uint32_t q1 = static_cast<uint8_t>(static_cast<int8_t>(roundf(__fmul_rn(v[e + 1], id))));
      *reinterpret_cast<uint16_t*>(out + 2 + p * E + e) = static_cast<uint16_t>(q0 | (q1 << 8));
    }
    return;
  }
  // q4_0: the first element of largest magnitude, in index order (lane, then e).
  float amax = 0.f, mx = 0.f;
#pragma unroll
  for (int e = 0; e < E; ++e)
    if (amax < fabsf(v[e])) amax = fabsf(v[e]), mx = v[e];
  int at = amax > 0.f ? p : LPB;
#pragma unroll
  for (int off = LPB / 2; off >= 1; off >>= 1) {
    const float oa = __shfl_xor_sync(kFull, amax, off), om = __shfl_xor_sync(kFull, mx, off);
    const int oat = __shfl_xor_sync(kFull, at, off);
    if (oa > amax || (oa == amax && oat < at)) amax = oa, mx = om, at = oat;
  }
  const float d = __fdiv_rn(mx, -8.f);
  const float id = reciprocal_or_zero(d);
  int q[E];
#pragma unroll
  for (int e = 0; e < E; ++e) q[e] = min(15, static_cast<int>(__fadd_rn(__fmul_rn(v[e], id), 8.5f)));
  // Byte j of the block is q_j | q_{j+16} << 4: element j + 16 is held LPB/2 lanes up.
  uint8_t* out = dst + 18 * blk;
  if (p == 0) store_half_field(out, d, clamped);
#pragma unroll
  for (int e = 0; e < E; e += 2) {
    const int hi0 = __shfl_down_sync(kFull, q[e], LPB / 2), hi1 = __shfl_down_sync(kFull, q[e + 1], LPB / 2);
    if (p < LPB / 2)
      *reinterpret_cast<uint16_t*>(out + 2 + p * E + e) =
          static_cast<uint16_t>((q[e] | (hi0 << 4)) | ((q[e + 1] | (hi1 << 4)) << 8));
  }
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32) quantize_warp_kernel(const __grid_constant__ QuantizeArgs a) {
  constexpr int E = D / 32, K = D / 32;
  __shared__ SharedCodebooks cb;
  __shared__ WarpSmem<D> ws[kWarps];
  const int side = a.first_side + blockIdx.z, head = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const CodecDesc& c = a.codec[side];
  load_codebooks(c, cb, threadIdx.x);
  __syncthreads();
  const RotationDesc rot = a.rotations[side][head];
  const int rb = c.record_bytes;
  float* xs = ws[warp].x;
  uint8_t* rec = ws[warp].rec;
  const int t0 = (blockIdx.x * kWarps + warp) * kTokensPerWarp;
  const int t1 = min(t0 + kTokensPerWarp, a.n_tokens);
  const bool plain = a.rot_kind[side] == RotationKind::none && c.kind != QuantKind::mse;
  for (int t = t0; t < t1; ++t) {
    const int slot = a.slots[t];
    if (__all_sync(kFull, slot < 0)) continue;  // a vote: the compiler sees a uniform branch
    float v[E];
    load_lane<E>(a.src[side], t * a.token_stride + head * D + lane * E, a.dtype, a.vector_loads != 0, v);
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
    const int64_t block = a.block_shift >= 0 ? slot >> a.block_shift : slot / a.block_tokens;
    const int64_t tok = slot - block * a.block_tokens;
    uint8_t* dst = a.pool[side] + block * a.block_bytes[side] + (head * a.block_tokens + tok) * rb;
    bool clamped = false;
    if (plain) {  // no rotation, no staging
      encode_plain<D>(c, v, dst, lane, clamped);
      if (__any_sync(kFull, clamped) && lane == 0) atomicAdd(&a.status->saturated, 1ull);
      continue;
    }
    if constexpr (E % 4 == 0) {
#pragma unroll
      for (int q = 0; q < E / 4; ++q)
        reinterpret_cast<float4*>(xs + lane * E)[q] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
    } else {
      *reinterpret_cast<float2*>(xs + lane * E) = make_float2(v[0], v[1]);
    }
    __syncwarp();
    float y[K];
    rotate<D>(a.rot_kind[side], a.rot_rounds[side], rot, xs, y, lane);
    encode<D>(c, cb, y, rec, lane, clamped);
    if (__any_sync(kFull, clamped) && lane == 0) atomicAdd(&a.status->saturated, 1ull);
    __syncwarp();
    const uint16_t* src = reinterpret_cast<const uint16_t*>(rec);
    for (int o = lane; o < rb / 2; o += 32) reinterpret_cast<uint16_t*>(dst)[o] = src[o];
    __syncwarp();  // rec and xs are reused by the next vector
  }
}

}  // namespace

bool quantize_warp_applies(const CodecDesc& c, RotationKind rotation) {
  return c.kind != QuantKind::group && rotation != RotationKind::dense;
}

void launch_quantize_warp(const QuantizeArgs& a, int d, int n_sides, void* stream) {
  const int per_cta = kWarps * kTokensPerWarp;
  const dim3 grid((a.n_tokens + per_cta - 1) / per_cta, a.n_kv, n_sides);
  auto s = static_cast<cudaStream_t>(stream);
  dispatch_head_dim(d, "quantize_on_write (warp kernel)",
                    [&]<int D>() { quantize_warp_kernel<D><<<grid, kWarps * 32, 0, s>>>(a); });
  check_launch("quantize_warp_kernel");
}

}  // namespace tq::cuda::detail
