#pragma once
// fp16 record fields on the device with the CPU's range rules (core/half_fields.h,
// docs/FORMATS.md "Range"): fields saturate to ±65504 (NaN to +0) and say so, norms and
// scales too small to invert give zero-vector codes, and refused inputs are reported in
// the layer's WriteStatus.
#include <cuda_fp16.h>

#include <cstdint>

#include "write_status.h"

namespace tq::cuda::detail {

// clamp_to_half_range (half.h): values that would round to ±Inf give ±65504, NaN gives +0.
__device__ inline float clamp_to_half_range(float f, bool& clamped) {
  if (fabsf(f) < 65520.f) return f;  // false for NaN
  clamped = true;
  return isnan(f) ? 0.f : copysignf(65504.f, f);
}
__device__ inline uint16_t half_field_bits(float f, bool& clamped) {
  return __half_as_ushort(__float2half_rn(clamp_to_half_range(f, clamped)));
}
// fp16 fields sit at even offsets of records, which start at even offsets.
__device__ inline void store_half_field(uint8_t* p, float f, bool& clamped) {
  *reinterpret_cast<uint16_t*>(p) = half_field_bits(f, clamped);
}
// What store_half_field(f) reads back as.
__device__ inline float round_half_field(float f, bool& clamped) {
  return __half2float(__float2half_rn(clamp_to_half_range(f, clamped)));
}

// reciprocal_or_zero (core/half_fields.h): 1/x, or 0 where x is 0 or 1/x overflows.
__device__ inline float reciprocal_or_zero(float x) {
  if (x == 0.f) return 0.f;
  const float r = __fdiv_rn(1.f, x);
  return isinf(r) ? 0.f : r;
}

// Fp8Quantizer::scale_bits: max|y|/448 rounded up to fp16 (so no code saturates), 65504
// and `saturated` beyond that.
__device__ inline uint16_t fp8_scale_bits(float amax, bool& saturated) {
  const float s = __fdiv_rn(amax, 448.f);
  if (!(s <= 65504.f)) {
    saturated = true;
    return 0x7bffu;
  }
  uint16_t h = __half_as_ushort(__float2half_rn(s));
  if (__half2float(__ushort_as_half(h)) < s) ++h;  // the next fp16 up
  return h;
}

// Keeps the first refused input of the write (BadValue order) in the layer's status.
__device__ inline void note_bad_value(WriteStatus* s, int token, int side, int head, int coord, float x) {
  const BadValue b{token, side, head, coord, isnan(x) ? 0 : x > 0.f ? 1 : 2};
  atomicMin(&s->first_bad, b.key());
}

}  // namespace tq::cuda::detail
