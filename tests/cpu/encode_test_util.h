#pragma once
// Shared by the encoder tests: a fast encoder's record against the reference Codec::encode.
//
// Records must be byte-identical, except at documented near-ties. The fast encoders run
// the reference's float operations in the reference's order, so on this compiler every
// record is expected to match; a compiler that contracts the reference's a*b + c
// differently may move the rotated coordinates by a few ulps. A differing record is
// accepted only if
//   - every differing code is one step away from the reference's, and the reference's
//     value lies within kTieTol of the boundary between the two codes (mse: |y_i/‖y‖ −
//     boundary| <= kTieTol; q8_0/q4_0/group: the scaled value within kTieTol·max(1, |s|)
//     of the rounding point), and
//   - every fp16 field (norms, residual norms, block scales, group min/step) is at most
//     one fp16 value away (the fields round float values that moved by a few ulps).
// The prod codecs' sign bits may differ only where the reference's projection S_j·r lies
// within kTieTol·‖S_j‖·‖r‖ of zero.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "turboquant/blocks.h"
#include "turboquant/codec.h"
#include "turboquant/half.h"
#include "turboquant/packing.h"
#include "turboquant/quantizers.h"

namespace tq::test {

inline constexpr double kTieTol = 1e-5;

// fp16 fields at most one representable value apart (bit patterns mapped to a line, so
// that -0 and +0 are the same point and subnormals count like normals). Both must be
// finite: Inf sits one step past the saturated 65504 but is never a near-tie.
inline bool half_close(const uint8_t* a, const uint8_t* b) {
  auto finite = [](const uint8_t* p) { return (p[1] & 0x7c) != 0x7c; };
  auto line = [](const uint8_t* p) {
    const int h = p[0] | (p[1] << 8);
    return (h & 0x8000) ? -(h & 0x7fff) : h;
  };
  return finite(a) && finite(b) && std::abs(line(a) - line(b)) <= 1;
}

// Distance of s to the nearest point of the grid offset + k (k integer), relative to max(1, |s|).
inline double off_grid(double s, double offset) {
  const double r = s - offset;
  return std::fabs(r - std::nearbyint(r)) / std::max(1.0, std::fabs(s));
}

// Empty when `fast` is the reference record `ref` of x up to the near-ties above, else why not.
inline std::string near_tie_failure(const Codec& c, const float* x, const uint8_t* ref, const uint8_t* fast) {
  const int D = c.code_dim();
  std::vector<float> y(D);
  c.rotation().forward(x, y.data());
  const Quantizer& q = c.quantizer();
  auto code_step = [](int a, int b) { return std::abs(a - b) == 1; };
  switch (c.spec().quant) {
    case QuantKind::f16: return "record differs (no tolerance for f16)";
    case QuantKind::fp8: return "record differs (no tolerance for fp8: no rotation, no sums)";
    case QuantKind::q8_0:
    case QuantKind::q4_0: {
      const bool q8 = c.spec().quant == QuantKind::q8_0;
      const size_t bb = q8 ? sizeof(blocks::BlockQ8_0) : sizeof(blocks::BlockQ4_0);
      for (int bl = 0; bl < D / 32; ++bl) {
        const uint8_t *r = ref + bb * bl, *f = fast + bb * bl;
        if (!half_close(f, r)) return "block scale " + std::to_string(bl) + " differs";
        double amax = 0, m = 0;
        for (int j = 0; j < 32; ++j)
          if (std::fabs(y[32 * bl + j]) > amax) amax = std::fabs(m = y[32 * bl + j]);
        for (int j = 0; j < 32; ++j) {
          int a, b;
          if (q8) {
            a = static_cast<int8_t>(r[2 + j]), b = static_cast<int8_t>(f[2 + j]);
          } else {
            const int sh = j < 16 ? 0 : 4, byte = 2 + j % 16;
            a = (r[byte] >> sh) & 15, b = (f[byte] >> sh) & 15;
          }
          if (a == b) continue;
          // q8_0 rounds y·127/amax at half-integers; q4_0 truncates y·(−8/m) + 8.5 at integers.
          const double s = q8 ? y[32 * bl + j] * 127.0 / amax : y[32 * bl + j] * (-8.0 / m) + 8.5;
          if (!code_step(a, b) || off_grid(s, q8 ? 0.5 : 0.0) > kTieTol)
            return "code " + std::to_string(32 * bl + j) + ": " + std::to_string(a) + " vs " + std::to_string(b) +
                   " at scaled value " + std::to_string(s);
        }
      }
      return "";
    }
    case QuantKind::mse: {
      const auto& mq = static_cast<const MseQuantizer&>(q);
      if (!half_close(fast, ref)) return "norm differs";
      std::vector<uint8_t> ia(D), ib(D);
      mq.indices(ref, ia.data());
      mq.indices(fast, ib.data());
      double n2 = 0;
      for (float v : y) n2 += double(v) * v;
      for (int i = 0; i < D; ++i) {
        if (ia[i] == ib[i]) continue;
        const Codebook& cb = i < mq.n_hi() ? mq.hi() : mq.lo();
        const double t = y[i] / std::sqrt(n2);
        if (!code_step(ia[i], ib[i]) || std::fabs(t - cb.boundaries[std::min(ia[i], ib[i])]) > kTieTol)
          return "index " + std::to_string(i) + ": " + std::to_string(ia[i]) + " vs " + std::to_string(ib[i]) +
                 " at y/|y| = " + std::to_string(t);
      }
      return "";
    }
    case QuantKind::grouped: return "calibrated codecs have no lane encoder";
    case QuantKind::prod: {
      const auto& pq = static_cast<const ProdQuantizer&>(q);
      if (!half_close(fast, ref) || !half_close(fast + 2, ref + 2)) return "norm or residual norm differs";
      double n2 = 0;
      for (float v : y) n2 += double(v) * v;
      const Codebook& cb = pq.codebook();
      std::vector<double> r(D);  // the reference's residual u − c[idx]
      double r2 = 0;
      for (int i = 0; i < D; ++i) {
        const double t = y[i] / std::sqrt(n2);
        const int a = read_code(ref + pq.code_offset(), i, pq.mse_bits());
        const int b = read_code(fast + pq.code_offset(), i, pq.mse_bits());
        if (a != b && (!code_step(a, b) || std::fabs(t - cb.boundaries[std::min(a, b)]) > kTieTol))
          return "index " + std::to_string(i) + ": " + std::to_string(a) + " vs " + std::to_string(b);
        r[i] = t - cb.levels[a];
        r2 += r[i] * r[i];
      }
      // A sign of S r may differ only where the projection is within kTieTol·‖S_j‖·‖r‖ of 0.
      const float* S = pq.qjl_matrix().data();
      for (int j = 0; j < D; ++j) {
        if (read_code(ref + pq.sign_offset(), j, 1) == read_code(fast + pq.sign_offset(), j, 1)) continue;
        double s = 0, row2 = 0;
        for (int i = 0; i < D; ++i) {
          s += double(S[size_t(j) * D + i]) * r[i];
          row2 += double(S[size_t(j) * D + i]) * S[size_t(j) * D + i];
        }
        if (std::fabs(s) > kTieTol * std::sqrt(row2 * r2)) return "sign " + std::to_string(j) + " at S r = " + std::to_string(s);
      }
      return "";
    }
    case QuantKind::group: {
      const auto& gq = static_cast<const GroupQuantizer&>(q);
      const int G = gq.group();
      for (int g = 0; g < D / G; ++g) {
        const uint8_t *r = ref + gq.group_bytes() * g, *f = fast + gq.group_bytes() * g;
        if (!half_close(f, r) || !half_close(f + 2, r + 2)) return "group " + std::to_string(g) + " min/step differ";
        const double mn = load_half(r), step = load_half(r + 2);
        for (int i = 0; i < G; ++i) {
          const int a = read_code(r + 4, i, gq.bits()), b = read_code(f + 4, i, gq.bits());
          if (a == b) continue;
          const double s = (y[G * g + i] - mn) / step;
          if (!code_step(a, b) || off_grid(s, 0.5) > kTieTol)
            return "code " + std::to_string(G * g + i) + ": " + std::to_string(a) + " vs " + std::to_string(b);
        }
      }
      return "";
    }
  }
  return "unknown quantizer";
}

// Encodes x with the reference and checks `fast` record by record; returns near-tie count.
inline int expect_matches(const Codec& c, const float* x, size_t stride, int n, const uint8_t* fast, size_t out_stride,
                   const std::string& what) {
  std::vector<uint8_t> ref(c.record_bytes());
  int ties = 0;
  for (int t = 0; t < n; ++t) {
    c.encode(x + stride * t, ref.data());
    const uint8_t* f = fast + out_stride * t;
    if (std::memcmp(ref.data(), f, ref.size()) == 0) continue;
    const std::string why = near_tie_failure(c, x + stride * t, ref.data(), f);
    EXPECT_EQ(why, "") << what << " vector " << t << " (input kind " << t % 4 << ")";
    ++ties;
  }
  return ties;
}

}  // namespace tq::test
