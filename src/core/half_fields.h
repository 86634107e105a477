#pragma once
// Range handling shared by the reference encoders and the SIMD lane encoders
// (docs/FORMATS.md, "Range"): fp16 record fields stored saturated, and the reciprocal
// of a norm or scale that is too small to invert.
#include <cmath>
#include <cstdint>

#include "turboquant/half.h"
#include "turboquant/range.h"

namespace tq::detail {

// The fp16 fields of one record, stored through clamp_to_half_range. The record counts
// once in tq::range_events() when any of its fields was clamped.
class HalfFields {
 public:
  HalfFields() = default;
  HalfFields(const HalfFields&) = delete;
  HalfFields& operator=(const HalfFields&) = delete;
  ~HalfFields() {
    if (clamped_) count_saturated(1);
  }
  void store(uint8_t* p, float f) { store_half(p, clamp_to_half_range(f, clamped_)); }
  void note_clamped() { clamped_ = true; }  // a field of another format saturated
  // The value store(p, f) reads back as (codes computed from the stored field).
  float round(float f) { return round_to_half(clamp_to_half_range(f, clamped_)); }

 private:
  bool clamped_ = false;
};

// 1/x, or 0 where x is 0 or 1/x overflows float (|x| below about 2.9e-39). Such a vector
// or block lies far below fp16's smallest value: its norm or scale stores as 0, and with
// a zero reciprocal it gets the codes of a zero vector instead of codes from ±Inf/NaN.
inline float reciprocal_or_zero(float x) {
  if (x == 0.f) return 0.f;
  const float r = 1.f / x;
  return std::isinf(r) ? 0.f : r;
}
inline float reciprocal_or_zero(double x) {
  if (x == 0.0) return 0.f;
  const float r = static_cast<float>(1.0 / x);
  return std::isinf(r) ? 0.f : r;
}

}  // namespace tq::detail
