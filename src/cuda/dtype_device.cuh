#pragma once
// Input element loads (f32 / f16 / bf16 -> float) and fp16 field loads inside packed
// records.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace tq::cuda::detail {

__device__ inline float load_element(const void* base, int64_t i, int dtype) {
  switch (dtype) {
    case 1: return __half2float(static_cast<const __half*>(base)[i]);
    case 2: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
    default: return static_cast<const float*>(base)[i];
  }
}

// N pairs of input elements as floats: pair k is elements i0 + off[k] and + 1 (i0 + off[k]
// even, the base aligned to two elements), one 8-byte (f32) or 4-byte (f16 / bf16) load
// each, all issued before any is converted (one branch on the dtype, not one per element).
template <int N>
__device__ inline void load_element_pairs(const void* base, int64_t i0, const int (&off)[N], int dtype,
                                          float2 (&out)[N]) {
  if (dtype == 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = *reinterpret_cast<const float2*>(static_cast<const float*>(base) + i0 + off[k]);
    return;
  }
  uint32_t w[N];
#pragma unroll
  for (int k = 0; k < N; ++k) w[k] = *reinterpret_cast<const uint32_t*>(static_cast<const uint16_t*>(base) + i0 + off[k]);
#pragma unroll
  for (int k = 0; k < N; ++k)
    out[k] = dtype == 1 ? __half22float2(*reinterpret_cast<const __half2*>(&w[k]))
                        : __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[k]));
}

__device__ inline void store_element(void* base, int64_t i, int dtype, float v) {
  switch (dtype) {
    case 1: static_cast<__half*>(base)[i] = __float2half_rn(v); break;
    case 2: static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(base)[i] = v;
  }
}

// N words of two 16-bit inputs each (low half first) -> 2N floats; dtype 1: f16, else bf16.
template <int N>
__device__ inline void unpack_16bit_pairs(const uint32_t* w, int dtype, float* out) {
#pragma unroll
  for (int k = 0; k < N; ++k) {
    const uint16_t lo = static_cast<uint16_t>(w[k] & 0xffffu), hi = static_cast<uint16_t>(w[k] >> 16);
    if (dtype == 1) {
      out[2 * k] = __half2float(__ushort_as_half(lo));
      out[2 * k + 1] = __half2float(__ushort_as_half(hi));
    } else {
      out[2 * k] = __bfloat162float(__ushort_as_bfloat16(lo));
      out[2 * k + 1] = __bfloat162float(__ushort_as_bfloat16(hi));
    }
  }
}

// fp16 fields sit at even offsets of records, which start at even offsets. (Stores go
// through range_device.cuh, which saturates them.)
__device__ inline float load_half_field(const uint8_t* p) {
  return __half2float(__ushort_as_half(*reinterpret_cast<const uint16_t*>(p)));
}

}  // namespace tq::cuda::detail
