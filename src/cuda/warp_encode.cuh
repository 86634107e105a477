#pragma once
// Pieces of the warp-per-vector quantize kernels (quantize_warp.cu, quantize_dense_mma.cu):
// inputs staged in shared memory by cp.async, a lane's slice of a staged vector, and the
// record of a rotated vector held one coordinate per lane and k (lane + 32k), with the
// tiled kernel's arithmetic (quantize.cu), so records match Codec::encode.
#include "codebook_device.cuh"
#include "copy_async.cuh"
#include "dtype_device.cuh"
#include "quantize_args.h"
#include "range_device.cuh"

namespace tq::cuda::detail {

constexpr unsigned kFull = 0xffffffffu;

// Lane's E consecutive inputs [lane*E, lane*E + E) of one staged vector (shared memory,
// 16-byte aligned rows).
template <int E>
__device__ inline void load_lane(const void* base, int64_t i, int dtype, float* out) {
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
#pragma unroll
    for (int q = 0; q < E / 8; ++q) {
      const uint4 u = reinterpret_cast<const uint4*>(p)[q];
      w[4 * q] = u.x, w[4 * q + 1] = u.y, w[4 * q + 2] = u.z, w[4 * q + 3] = u.w;
    }
  }
  unpack_16bit_pairs<E / 2>(w, dtype, out);
}

// Copies the raw inputs of tokens [t0, t0 + n) of `head` into `in` (row j at j * pitch bytes):
// 16-byte cp.async chunks when the inputs are aligned for them, element copies otherwise.
// Returns with the copies landed and visible to the whole warp.
template <int D>
__device__ inline void stage_inputs(const QuantizeArgs& a, int side, int head, int t0, int n, uint8_t* in, int pitch,
                                    int lane) {
  const int shift = a.dtype == 0 ? 2 : 1;  // log2 of the element size
  const uint8_t* src = static_cast<const uint8_t*>(a.src[side]);
  const int64_t stride = a.token_stride << shift, first = (t0 * a.token_stride + int64_t{head} * D) << shift;
  if (a.vector_loads) {
    constexpr int kLogD = D == 64 ? 6 : D == 128 ? 7 : 8;
    static_assert(D == 1 << kLogD, "head dims are powers of two");
    const int chunk_shift = kLogD + shift - 4;  // log2 of the row's 16-byte chunks
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(in));
    for (int c = lane; c < n << chunk_shift; c += 32) {
      const int j = c >> chunk_shift, o = (c & ((1 << chunk_shift) - 1)) * 16;
      cp_async16(dst + j * pitch + o, src + first + j * stride + o);
    }
    cp_async_commit();
    cp_async_wait<0>();
  } else if (shift == 2) {
    for (int e = lane; e < n * D; e += 32)
      *reinterpret_cast<uint32_t*>(in + (e / D) * pitch + 4 * (e % D)) =
          *reinterpret_cast<const uint32_t*>(src + first + (e / D) * stride + 4 * (e % D));
  } else {
    for (int e = lane; e < n * D; e += 32)
      *reinterpret_cast<uint16_t*>(in + (e / D) * pitch + 2 * (e % D)) =
          *reinterpret_cast<const uint16_t*>(src + first + (e / D) * stride + 2 * (e % D));
  }
  __syncwarp();
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

}  // namespace tq::cuda::detail
