// Portable row kernels and the activation quantizers: plain C++ integer block sums, the
// reference the SIMD paths are tested against and the path on CPUs without AVX2.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ggml_types.h"
#include "qmatmul_kernels.h"
#include "turboquant/half.h"

namespace tq::model::qk {
namespace {

namespace b = gguf::blocks;

// d = amax/127 and q = round(x/d): the rounding error of x is at most d/2 = amax/254.
float quantize_block(const float* x, int n, int8_t* q) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < n; ++j) q[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
  return d;
}

// The 32 codes of a 4-bit block: element j < 16 in the low nibble of qs[j], j + 16 high.
void nibbles(const uint8_t* qs, int q[32]) {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0x0f;
    q[j + 16] = qs[j] >> 4;
  }
}
void fifth_bits(const uint8_t* qh_bytes, int q[32]) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 32; ++j) q[j] |= static_cast<int>((qh >> j) & 1u) << 4;
}
int dot32(const int q[32], const int8_t* x) {
  int s = 0;
  for (int j = 0; j < 32; ++j) s += q[j] * x[j];
  return s;
}

// Q4_0/Q5_0: w = dw·(q − 8 or 16), so w·x = dw·(dx·Σq·xq − offset·sx).
// Q4_1/Q5_1: w = dw·q + m, so w·x = dw·dx·Σq·xq + m·sx.
template <typename Block, bool kFive, bool kAffine>
float dot_q4q5(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const Q8Block*>(xv);
  float sum = 0.0f;
  for (int i = 0; i < cols / kQ8; ++i) {
    const auto blk = b::load<Block>(w, i);
    int q[32];
    nibbles(blk.qs, q);
    if constexpr (kFive) fifth_bits(blk.qh, q);
    const float dw = half_to_float(blk.d);
    const float isum = x[i].d * static_cast<float>(dot32(q, x[i].qs));
    if constexpr (kAffine) {
      sum += dw * isum + half_to_float(blk.m) * x[i].s;
    } else {
      sum += dw * (isum - (kFive ? 16.0f : 8.0f) * x[i].s);
    }
  }
  return sum;
}

float dot_q8_0(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const Q8Block*>(xv);
  float sum = 0.0f;
  for (int i = 0; i < cols / kQ8; ++i) {
    const auto blk = b::load<b::Q8_0>(w, i);
    int s = 0;
    for (int j = 0; j < 32; ++j) s += blk.qs[j] * x[i].qs[j];
    sum += half_to_float(blk.d) * x[i].d * static_cast<float>(s);
  }
  return sum;
}

// Q4_K/Q5_K: w = d·sc_j·q − dmin·m_j, so per super-block
// w·x = dx·(d·Σ_j sc_j·Σq·xq − dmin·Σ_j m_j·Σxq). `fifth` adds Q5_K's high bits.
template <bool kFive>
float dot_k45(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const Q8KBlock*>(xv);
  float sum = 0.0f;
  for (int i = 0; i < cols / kQ8K; ++i) {
    const uint8_t *scales, *qs, *qh = nullptr;
    uint16_t d16, dmin16;
    b::Q4_K b4;
    b::Q5_K b5;
    if constexpr (kFive) {
      b5 = b::load<b::Q5_K>(w, i);
      scales = b5.scales, qs = b5.qs, qh = b5.qh, d16 = b5.d, dmin16 = b5.dmin;
    } else {
      b4 = b::load<b::Q4_K>(w, i);
      scales = b4.scales, qs = b4.qs, d16 = b4.d, dmin16 = b4.dmin;
    }
    const int8_t* xq = x[i].qs;
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      b::scale_min_k4(j, scales, sc, m);
      const uint8_t* q = qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int s = 0;
      for (int l = 0; l < 32; ++l) {
        int v = (q[l] >> shift) & 0x0f;
        if (kFive) v |= ((qh[l] >> j) & 1) << 4;
        s += v * xq[32 * j + l];
      }
      isum += sc * s;
      msum += m * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
    }
    sum += x[i].d * (half_to_float(d16) * static_cast<float>(isum) - half_to_float(dmin16) * static_cast<float>(msum));
  }
  return sum;
}

// Q6_K: w = d·sc_k·(q − 32) over 16 sub-blocks of 16.
float dot_q6_k(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const Q8KBlock*>(xv);
  float sum = 0.0f;
  for (int i = 0; i < cols / kQ8K; ++i) {
    const auto blk = b::load<b::Q6_K>(w, i);
    int q[256];
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = blk.ql + 64 * half;
      const uint8_t* qh = blk.qh + 32 * half;
      int* y = q + 128 * half;
      for (int l = 0; l < 32; ++l) {
        y[l] = (ql[l] & 0x0f) | ((qh[l] & 3) << 4);
        y[l + 32] = (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4);
        y[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        y[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
      }
    }
    int isum = 0;
    for (int k = 0; k < 16; ++k) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[16 * k + l] * x[i].qs[16 * k + l];
      isum += blk.scales[k] * (s - 32 * x[i].bsums[k]);
    }
    sum += half_to_float(blk.d) * x[i].d * static_cast<float>(isum);
  }
  return sum;
}

float dot_f16(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const float*>(xv);
  float sum = 0.0f;
  for (int j = 0; j < cols; ++j) sum += load_half(w + 2 * j) * x[j];
  return sum;
}

float dot_bf16(const uint8_t* w, const void* xv, int cols) {
  const auto* x = static_cast<const float*>(xv);
  float sum = 0.0f;
  for (int j = 0; j < cols; ++j) {
    const uint32_t bits = static_cast<uint32_t>(w[2 * j] | (w[2 * j + 1] << 8)) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    sum += v * x[j];
  }
  return sum;
}

}  // namespace

void quantize_q8(const float* x, int cols, Q8Block* out) {
  for (int i = 0; i < cols / kQ8; ++i, x += kQ8) {
    Q8Block& o = out[i];
    o.d = quantize_block(x, kQ8, o.qs);
    int s = 0;
    for (int j = 0; j < kQ8; ++j) s += o.qs[j];
    o.s = o.d * static_cast<float>(s);
  }
}

void quantize_q8k(const float* x, int cols, Q8KBlock* out) {
  for (int i = 0; i < cols / kQ8K; ++i, x += kQ8K) {
    Q8KBlock& o = out[i];
    o.d = quantize_block(x, kQ8K, o.qs);
    for (int k = 0; k < kQ8K / 16; ++k) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += o.qs[16 * k + j];
      o.bsums[k] = static_cast<int16_t>(s);
    }
  }
}

const DotTable& portable_dots() {
  static const DotTable t{dot_f16,
                          dot_bf16,
                          dot_q4q5<b::Q4_0, false, false>,
                          dot_q4q5<b::Q4_1, false, true>,
                          dot_q4q5<b::Q5_0, true, false>,
                          dot_q4q5<b::Q5_1, true, true>,
                          dot_q8_0,
                          dot_k45<false>,
                          dot_k45<true>,
                          dot_q6_k};
  return t;
}

}  // namespace tq::model::qk
