#pragma once
// IEEE 754 binary16 conversion in portable C++ (round to nearest even), so encoded
// bytes are identical on every platform and backend.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace tq {

inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // Inf or NaN: keep NaN quiet and non-zero
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to Inf
  if (abs < 0x38800000u) {  // result is subnormal or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14..24
    const uint32_t kept = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1);
    const uint32_t rounded = kept + ((rest > halfway || (rest == halfway && (kept & 1u))) ? 1u : 0u);
    return static_cast<uint16_t>(sign | rounded);
  }
  // Normal: rebias exponent, round the 13 dropped mantissa bits to nearest even.
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      x = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// Round a float through fp16 and back: what a stored fp16 field will read as.
inline float round_to_half(float f) { return half_to_float(float_to_half(f)); }

// The largest finite fp16 value, and the smallest float magnitude that rounds past it to Inf.
inline constexpr float kHalfMax = 65504.f;
inline constexpr float kHalfOverflow = 65520.f;

// f limited to what an fp16 field holds (docs/FORMATS.md, "Range"): a value that would
// round to ±Inf, or is ±Inf, becomes ±65504; NaN becomes +0; anything else is returned
// unchanged, so its fp16 bits stay float_to_half's. Sets `clamped` when it changed f.
inline float clamp_to_half_range(float f, bool& clamped) {
  if (std::fabs(f) < kHalfOverflow) return f;  // false for NaN
  clamped = true;
  return std::isnan(f) ? 0.f : std::copysign(kHalfMax, f);
}

// Unaligned little-endian loads/stores for fp16 fields inside packed records.
inline void store_half(uint8_t* p, float f) {
  const uint16_t h = float_to_half(f);
  p[0] = static_cast<uint8_t>(h & 0xffu);
  p[1] = static_cast<uint8_t>(h >> 8);
}
inline float load_half(const uint8_t* p) {
  return half_to_float(static_cast<uint16_t>(p[0] | (p[1] << 8)));
}

}  // namespace tq
