// Reference dequantization of the K-quants: super-blocks of 256 elements whose sub-block
// scales are themselves quantized against one fp16 (or f32) super-scale. The float
// operations follow ggml's order (scale · sub-scale first, then · q) so results match
// llama.cpp bit for bit.
#include "ggml_types.h"
#include "turboquant/half.h"

namespace tq::gguf {
namespace {

using blocks::scale_min_k4;

// Scale and offset of sub-blocks 2p and 2p+1 of a Q4_K / Q5_K block (they share 32 bytes
// of qs: 2p in the low nibbles, 2p+1 in the high ones).
struct PairScales {
  float d_lo, m_lo, d_hi, m_hi;
};
PairScales pair_scales(float d, float dmin, const uint8_t* scales, int p) {
  int sc, m;
  PairScales r;
  scale_min_k4(2 * p, scales, sc, m);
  r.d_lo = d * static_cast<float>(sc);
  r.m_lo = dmin * static_cast<float>(m);
  scale_min_k4(2 * p + 1, scales, sc, m);
  r.d_hi = d * static_cast<float>(sc);
  r.m_hi = dmin * static_cast<float>(m);
  return r;
}

// Q3_K's 16 six-bit scales: low 4 bits in the nibbles of bytes 0..7 (scales 0..7 low
// nibbles, 8..15 high nibbles), top 2 bits in bytes 8..11, two bits per scale.
int scale_q3_k(int i, const uint8_t* s) {
  const int low = i < 8 ? (s[i] & 0x0f) : (s[i - 8] >> 4);
  const int high = (s[8 + (i % 4)] >> (2 * (i / 4))) & 3;
  return (low | (high << 4)) - 32;
}

}  // namespace

void dequantize_q2_k(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const auto b = blocks::load<blocks::Q2_K>(in, i);
    const float d = half_to_float(b.d);
    const float dmin = half_to_float(b.dmin);
    // Two halves of 128; in each, 4 shifts × 2 groups of 16 read 32 bytes of qs.
    int sub = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int g = 0; g < 2; ++g, ++sub) {
          const uint8_t sc = b.scales[sub];
          const float dl = d * static_cast<float>(sc & 0x0f);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *out++ = dl * static_cast<float>((q[l + 16 * g] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequantize_q3_k(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const auto b = blocks::load<blocks::Q3_K>(in, i);
    const float d = half_to_float(b.d);
    // Element e of each 128-half uses hmask bit (half·4 + shift/2): a set bit means q, clear q − 4.
    int sub = 0;
    uint8_t mask = 1;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2, mask = static_cast<uint8_t>(mask << 1)) {
        for (int g = 0; g < 2; ++g, ++sub) {
          const float dl = d * static_cast<float>(scale_q3_k(sub, b.scales));
          for (int l = 0; l < 16; ++l) {
            const int idx = l + 16 * g;
            const int v = ((q[idx] >> shift) & 3) - ((b.hmask[idx] & mask) ? 0 : 4);
            *out++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void dequantize_q4_k(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const auto b = blocks::load<blocks::Q4_K>(in, i);
    const float d = half_to_float(b.d);
    const float dmin = half_to_float(b.dmin);
    for (int p = 0; p < 4; ++p) {
      const uint8_t* q = b.qs + 32 * p;
      const PairScales s = pair_scales(d, dmin, b.scales, p);
      for (int l = 0; l < 32; ++l) *out++ = s.d_lo * static_cast<float>(q[l] & 0x0f) - s.m_lo;
      for (int l = 0; l < 32; ++l) *out++ = s.d_hi * static_cast<float>(q[l] >> 4) - s.m_hi;
    }
  }
}

void dequantize_q5_k(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const auto b = blocks::load<blocks::Q5_K>(in, i);
    const float d = half_to_float(b.d);
    const float dmin = half_to_float(b.dmin);
    // The fifth bit of sub-block s, element l, is bit s of qh[l].
    for (int p = 0; p < 4; ++p) {
      const uint8_t* q = b.qs + 32 * p;
      const PairScales s = pair_scales(d, dmin, b.scales, p);
      const uint8_t bit_lo = static_cast<uint8_t>(1u << (2 * p));
      const uint8_t bit_hi = static_cast<uint8_t>(1u << (2 * p + 1));
      for (int l = 0; l < 32; ++l) {
        *out++ = s.d_lo * static_cast<float>((q[l] & 0x0f) + ((b.qh[l] & bit_lo) ? 16 : 0)) - s.m_lo;
      }
      for (int l = 0; l < 32; ++l) {
        *out++ = s.d_hi * static_cast<float>((q[l] >> 4) + ((b.qh[l] & bit_hi) ? 16 : 0)) - s.m_hi;
      }
    }
  }
}

void dequantize_q6_k(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i, out += blocks::kQK_K) {
    const auto b = blocks::load<blocks::Q6_K>(in, i);
    const float d = half_to_float(b.d);
    // Per half of 128: ql[0..63] low nibbles → elements 0..63, high nibbles → 64..127;
    // qh[l] holds the top 2 bits of elements l, l+32, l+64, l+96 at bits 0, 2, 4, 6.
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b.ql + 64 * half;
      const uint8_t* qh = b.qh + 32 * half;
      const int8_t* sc = b.scales + 8 * half;
      float* y = out + 128 * half;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void dequantize_q8_k(const uint8_t* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i, out += blocks::kQK_K) {
    const auto b = blocks::load<blocks::Q8_K>(in, i);
    for (int j = 0; j < blocks::kQK_K; ++j) out[j] = b.d * static_cast<float>(b.qs[j]);
  }
}

}  // namespace tq::gguf
