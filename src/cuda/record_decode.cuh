#pragma once
// Reading records inside the attention kernel. Lane `lane` of a warp owns the C = D/32
// consecutive coordinates [lane*C, lane*C + C) of every vector; decode_lane returns their
// values v[c] and a factor that multiplies them all (the mse norm, the q8_0/q4_0 block
// scale, the fp8 vector scale, 1 otherwise). mse levels come from a per-lane copy of the codebook in shared
// memory (lut[level * 32 + lane]), which keeps the look-ups free of bank conflicts.
#include <cuda_fp8.h>

#include "device_desc.h"
#include "dtype_device.cuh"

namespace tq::cuda::detail {

// 32 bits of a little-endian bit string starting at bit `bit` (< 8) of byte p, read with
// two aligned 32-bit shared-memory loads and one funnel shift (buffers carry 8 bytes of
// slack at their end). The funnel shift counts its amount modulo 32, so p's misalignment
// needs no mask. The pointer is only offset, never rebuilt from an integer, so the
// compiler keeps the loads in the shared space.
__device__ inline uint32_t bit_window(const uint8_t* p, int bit) {
  const uint32_t addr = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p));
  const uint32_t* w = reinterpret_cast<const uint32_t*>(p - (addr & 3u));
  return __funnelshift_r(w[0], w[1], addr * 8 + bit);
}

template <int C>
__device__ inline float decode_lane(const CodecDesc& cd, const float* lut, const uint8_t* rec, int lane, float* v) {
  const int c0 = lane * C;
  switch (cd.kind) {
    case QuantKind::mse: {
      const bool hi = c0 < cd.n_hi;
      const int bits = hi ? cd.bits_hi : cd.bits_lo;
      const int first = (hi ? c0 : c0 - cd.n_hi) * bits;
      const uint32_t win = bit_window(rec + (hi ? cd.hi_offset : cd.lo_offset) + (first >> 3), first & 7);
      const uint32_t mask = (1u << bits) - 1u;
#pragma unroll
      for (int c = 0; c < C; ++c) v[c] = lut[(((win >> (c * bits)) & mask) << 5) + lane];
      return load_half_field(rec);
    }
    case QuantKind::f16: {
      const __half2* h = reinterpret_cast<const __half2*>(rec + 2 * c0);
#pragma unroll
      for (int c = 0; c < C; c += 2) {
        const float2 f = __half22float2(h[c / 2]);
        v[c] = f.x;
        v[c + 1] = f.y;
      }
      return 1.f;
    }
    case QuantKind::q8_0: {
      const uint8_t* b = rec + 34 * (c0 / 32);
      const int8_t* q = reinterpret_cast<const int8_t*>(b + 2 + c0 % 32);
#pragma unroll
      for (int c = 0; c < C; ++c) v[c] = static_cast<float>(q[c]);
      return load_half_field(b);
    }
    case QuantKind::q4_0: {
      const uint8_t* b = rec + 18 * (c0 / 32);
#pragma unroll
      for (int c = 0; c < C; ++c) {
        const int j = (c0 + c) % 32;
        const uint8_t byte = b[2 + (j & 15)];
        v[c] = static_cast<float>((j < 16 ? (byte & 15) : (byte >> 4)) - 8);
      }
      return load_half_field(b);
    }
    case QuantKind::fp8: {
      // E4M3 pairs through the fp16 conversion (exact; one instruction on sm_89+). The
      // codes start at byte 2 of an even-aligned record and c0 is even: 16-bit loads.
      const uint16_t* p = reinterpret_cast<const uint16_t*>(rec + 2 + c0);
#pragma unroll
      for (int c = 0; c < C; c += 2) {
        const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(p[c / 2], __NV_E4M3)));
        v[c] = f.x;
        v[c + 1] = f.y;
      }
      return load_half_field(rec);
    }
    case QuantKind::group: {
      const uint8_t* g = rec + cd.group_bytes * (c0 / cd.group);
      const float mn = load_half_field(g), step = load_half_field(g + 2);
      const int first = (c0 % cd.group) * cd.group_bits;
      const uint32_t win = bit_window(g + 4 + (first >> 3), first & 7);
      const uint32_t mask = (1u << cd.group_bits) - 1u;
#pragma unroll
      for (int c = 0; c < C; ++c)
        v[c] = mn + step * static_cast<float>((win >> (c * cd.group_bits)) & mask);
      return 1.f;
    }
  }
  return 0.f;
}

// The mse path with everything that depends only on the lane hoisted out of the token
// loop: where the lane's codes start in a record, their width, its codebook column.
template <int C>
struct MseLaneDecoder {
  int offset;  // byte of the lane's first code within a record
  int bit;     // its first bit within that byte
  int bits;
  uint32_t mask;
  const float* lut;  // lut + lane: level i at lut[32 * i]

  __device__ MseLaneDecoder(const CodecDesc& cd, const float* lut_base, int lane) {
    const int c0 = lane * C;
    const bool hi = c0 < cd.n_hi;
    bits = hi ? cd.bits_hi : cd.bits_lo;
    const int first = (hi ? c0 : c0 - cd.n_hi) * bits;
    offset = (hi ? cd.hi_offset : cd.lo_offset) + (first >> 3);
    bit = first & 7;
    mask = (1u << bits) - 1u;
    lut = lut_base + lane;
  }
  __device__ float operator()(const uint8_t* rec, float* v) const {
    const uint32_t win = bit_window(rec + offset, bit);
#pragma unroll
    for (int c = 0; c < C; ++c) v[c] = lut[((win >> (c * bits)) & mask) << 5];
    return load_half_field(rec);
  }
};

// Every other family, through the general switch.
template <int C>
struct AnyLaneDecoder {
  const CodecDesc& cd;
  const float* lut;
  int lane;
  __device__ float operator()(const uint8_t* rec, float* v) const { return decode_lane<C>(cd, lut, rec, lane, v); }
};

}  // namespace tq::cuda::detail
