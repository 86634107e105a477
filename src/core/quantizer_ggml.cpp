// The baselines people run today: fp16, and llama.cpp's q8_0 and q4_0 reference
// quantization (same rounding rules, same byte layout as llama.cpp's block_q8_0 and
// block_q4_0).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "turboquant/blocks.h"
#include "half_fields.h"
#include "turboquant/quantizers.h"

namespace tq {

using blocks::BlockQ4_0;
using blocks::BlockQ8_0;

void F16Quantizer::encode(const float* y, uint8_t* record) const {
  detail::HalfFields fields;
  for (int i = 0; i < dim_; ++i) fields.store(record + 2 * i, y[i]);
}
void F16Quantizer::decode(const uint8_t* record, float* y) const {
  for (int i = 0; i < dim_; ++i) y[i] = load_half(record + 2 * i);
}
float F16Quantizer::dot(const float* q, const uint8_t* record) const {
  float s = 0.f;
  for (int i = 0; i < dim_; ++i) s += q[i] * load_half(record + 2 * i);
  return s;
}
void F16Quantizer::accumulate(const uint8_t* record, float weight, float* acc) const {
  for (int i = 0; i < dim_; ++i) acc[i] += weight * load_half(record + 2 * i);
}

void encode_q8_0_blocks(const float* y, size_t n_blocks, uint8_t* record) {
  detail::HalfFields fields;
  for (size_t b = 0; b < n_blocks; ++b) {
    const float* x = y + 32 * b;
    uint8_t* out = record + sizeof(BlockQ8_0) * b;
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = detail::reciprocal_or_zero(d);
    fields.store(out, d);
    for (int j = 0; j < 32; ++j)
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[j] * id)));
  }
}

void Q8_0Quantizer::encode(const float* y, uint8_t* record) const { encode_q8_0_blocks(y, dim_ / 32, record); }

void Q8_0Quantizer::decode(const uint8_t* record, float* y) const {
  for (int b = 0; b < dim_ / 32; ++b) {
    const uint8_t* in = record + sizeof(BlockQ8_0) * b;
    const float d = load_half(in);
    for (int j = 0; j < 32; ++j) y[32 * b + j] = d * static_cast<int8_t>(in[2 + j]);
  }
}

void encode_q4_0_blocks(const float* y, size_t n_blocks, uint8_t* record) {
  detail::HalfFields fields;
  for (size_t b = 0; b < n_blocks; ++b) {
    const float* x = y + 32 * b;
    uint8_t* out = record + sizeof(BlockQ4_0) * b;
    float amax = 0.f, max = 0.f;  // the signed value of largest magnitude
    for (int j = 0; j < 32; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8.f;
    const float id = detail::reciprocal_or_zero(d);
    fields.store(out, d);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      out[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void Q4_0Quantizer::encode(const float* y, uint8_t* record) const { encode_q4_0_blocks(y, dim_ / 32, record); }

void Q4_0Quantizer::decode(const uint8_t* record, float* y) const {
  for (int b = 0; b < dim_ / 32; ++b) {
    const uint8_t* in = record + sizeof(BlockQ4_0) * b;
    const float d = load_half(in);
    for (int j = 0; j < 16; ++j) {
      y[32 * b + j] = d * ((in[2 + j] & 15) - 8);
      y[32 * b + j + 16] = d * ((in[2 + j] >> 4) - 8);
    }
  }
}

}  // namespace tq
