// The fp8 cache serving engines offer (vLLM, TensorRT-LLM, SGLang: OCP E4M3 with a scale),
// as one record per vector: [fp16 s][E4M3 codes]. Engines calibrate a static scale per
// layer or head; a codec row has no calibration, so the scale is the vector's own
// max|y|/448, stored with it (docs/FORMATS.md, "Codec records").
#include <algorithm>
#include <array>
#include <cmath>

#include "half_fields.h"
#include "turboquant/fp8.h"
#include "turboquant/quantizers.h"

namespace tq {

namespace {

// Every code's value: decode is one look-up per coordinate.
const std::array<float, 256>& e4m3_values() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = e4m3_to_float(static_cast<uint8_t>(c));
    return t;
  }();
  return table;
}

}  // namespace

// Rounded up, not to nearest: a scale rounded down would push the largest coordinate past
// 448, and where s is an fp16 subnormal (max|y| below about 0.03) that clips it by up to
// 1.5x, or zeroes the whole vector below s = 2^-25.
uint16_t Fp8Quantizer::scale_bits(float amax, bool& saturated) {
  const float s = amax / kE4M3Max;
  if (!(s <= kHalfMax)) {  // also NaN: cannot happen for finite inputs
    saturated = true;
    return float_to_half(kHalfMax);
  }
  uint16_t h = float_to_half(s);
  if (half_to_float(h) < s) ++h;  // the next fp16 up (s <= 65504, so never Inf)
  return h;
}

void Fp8Quantizer::encode(const float* y, uint8_t* record) const {
  float amax = 0.f;
  for (int i = 0; i < dim_; ++i) amax = std::max(amax, std::fabs(y[i]));
  detail::HalfFields fields;
  bool saturated = false;
  const uint16_t h = scale_bits(amax, saturated);
  if (saturated) fields.note_clamped();
  record[0] = static_cast<uint8_t>(h & 0xffu);
  record[1] = static_cast<uint8_t>(h >> 8);
  const float inv = detail::reciprocal_or_zero(half_to_float(h));  // s is 0 or >= 2^-24: never Inf
  for (int i = 0; i < dim_; ++i) record[2 + i] = float_to_e4m3(y[i] * inv);
}

void Fp8Quantizer::decode(const uint8_t* record, float* y) const {
  const auto& v = e4m3_values();
  const float s = load_half(record);
  for (int i = 0; i < dim_; ++i) y[i] = s * v[record[2 + i]];
}

float Fp8Quantizer::dot(const float* q, const uint8_t* record) const {
  const auto& v = e4m3_values();
  float sum = 0.f;
  for (int i = 0; i < dim_; ++i) sum += q[i] * v[record[2 + i]];
  return load_half(record) * sum;
}

void Fp8Quantizer::accumulate(const uint8_t* record, float weight, float* acc) const {
  const auto& v = e4m3_values();
  const float w = weight * load_half(record);
  for (int i = 0; i < dim_; ++i) acc[i] += w * v[record[2 + i]];
}

}  // namespace tq
