#pragma once
// OCP 8-bit floating point E4M3 ("E4M3FN": 1 sign bit, 4 exponent bits with bias 7,
// 3 mantissa bits; no infinities, S.1111.111 is NaN, largest finite ±448) in portable
// C++, so encoded bytes are identical on every platform and backend. Conversion rounds
// to nearest even and saturates to ±448, as CUDA's
// __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3) does.
//   code = s eeee mmm:  e = 0: (−1)^s · m · 2^−9 (subnormal; m = 0 is ±0)
//                       e > 0: (−1)^s · (8 + m) · 2^(e − 10)
#include <cstdint>
#include <cstring>
#include <limits>

namespace tq {

inline constexpr float kE4M3Max = 448.f;   // 0x7e
inline constexpr uint8_t kE4M3NaN = 0x7f;  // and 0xff

// Round to nearest even; |f| >= 448 (±Inf too) gives ±448, NaN gives 0x7f. The sign is
// kept, also for zeros and for values that round to zero.
inline uint8_t float_to_e4m3(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return kE4M3NaN;
  if (abs >= 0x43e00000u) return sign | 0x7eu;  // 448: every larger value saturates
  if (abs < 0x3c800000u) {                      // below 2^−6: subnormal codes m·2^−9
    if (abs <= 0x3a800000u) return sign;        // at most 2^−10, half the smallest: to ±0
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 141 - static_cast<int>(abs >> 23);  // 21..24: f·2^9 = mant >> shift
    const uint32_t kept = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1);
    // kept + 1 may reach 8, which is the smallest normal code (e = 1, m = 0).
    return static_cast<uint8_t>(sign | (kept + ((rest > halfway || (rest == halfway && (kept & 1u))) ? 1u : 0u)));
  }
  // Normal: rebias the exponent (127 -> 7), round the 20 dropped mantissa bits to nearest
  // even (a carry moves into the exponent; below 448 it never passes 0x7e).
  uint32_t e = (abs - 0x3c000000u) >> 20;
  const uint32_t rest = abs & 0xfffffu;
  if (rest > 0x80000u || (rest == 0x80000u && (e & 1u))) ++e;
  return static_cast<uint8_t>(sign | e);
}

inline float e4m3_to_float(uint8_t c) {
  const uint32_t e = (c >> 3) & 15u, m = c & 7u;
  float v;
  if (e == 15 && m == 7) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (e == 0) {
    v = static_cast<float>(m) * (1.f / 512.f);  // exact
  } else {
    const uint32_t bits = ((e + 120u) << 23) | (m << 20);
    std::memcpy(&v, &bits, 4);
  }
  return (c & 0x80u) ? -v : v;
}

}  // namespace tq
