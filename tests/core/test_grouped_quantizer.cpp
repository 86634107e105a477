// GroupedMseQuantizer: layout bytes (Σ over coded groups of norm bytes + ceil(size·bits/8)),
// bad layouts, zero-width groups, the encoder's scale search and its distortion table, the log-byte
// norm's step and range, and the query state's constant offset in dot().
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "turboquant/codebook.h"
#include "turboquant/error.h"
#include "turboquant/half.h"
#include "turboquant/packing.h"
#include "turboquant/quantizers.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

size_t expected_bytes(const std::vector<QuantGroup>& groups) {
  size_t b = 0;
  for (const QuantGroup& g : groups)
    if (g.bits > 0) b += g.norm_bits / 8 + (static_cast<size_t>(g.size) * g.bits + 7) / 8;
  return b;
}

std::vector<float> gaussian(Rng& rng, int n, double sd = 1.0) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(sd * rng.gaussian());
  return v;
}

TEST(GroupedMseQuantizer, LayoutBytesAndRecordBytes) {
  EXPECT_EQ(GroupedMseQuantizer::layout_bytes({{16, 3}, {8, 0}, {40, 5}}), (2u + 6) + 0 + (2 + 25));
  EXPECT_EQ(GroupedMseQuantizer::layout_bytes({{8, 0}}), 0u);
  EXPECT_EQ(GroupedMseQuantizer::layout_bytes({{3, 1}}), 3u);  // 2 + ceil(3/8)
  Rng rng(5);
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<QuantGroup> groups;
    int dim = 0;
    const int n = 1 + static_cast<int>(rng.below(6));
    for (int i = 0; i < n; ++i) {
      const int bits = static_cast<int>(rng.below(9));
      constexpr int kSizes[] = {2, 3, 5, 8, 16, 33};  // few sizes: each (size, bits) builds a codebook
      const int size = bits == 0 && rng.below(4) == 0 ? 1 : kSizes[rng.below(6)];
      groups.push_back({size, bits, rng.below(2) == 0 ? 8 : 16});
      dim += size;
    }
    const size_t want = expected_bytes(groups);
    EXPECT_EQ(GroupedMseQuantizer::layout_bytes(groups), want);
    GroupedMseQuantizer q(dim, groups);
    EXPECT_EQ(q.record_bytes(), want);
    EXPECT_EQ(q.query_state_floats(), static_cast<size_t>(dim) + 1);
    ASSERT_EQ(q.groups().size(), groups.size());
  }
}

TEST(GroupedMseQuantizer, BadLayoutsThrow) {
  EXPECT_THROW(GroupedMseQuantizer(64, {{32, 3}, {31, 3}}), Error);  // covers 63
  EXPECT_THROW(GroupedMseQuantizer(64, {{32, 3}, {33, 3}}), Error);  // covers 65
  EXPECT_THROW(GroupedMseQuantizer(64, {}), Error);
  EXPECT_THROW(GroupedMseQuantizer(64, {{64, 9}}), Error);
  EXPECT_THROW(GroupedMseQuantizer(64, {{64, -1}}), Error);
  EXPECT_THROW(GroupedMseQuantizer(64, {{63, 3}, {1, 2}}), Error);  // coded group of one
  EXPECT_THROW(GroupedMseQuantizer(64, {{64, 3}, {0, 0}}), Error);   // empty group
  EXPECT_NO_THROW(GroupedMseQuantizer(64, {{63, 3}, {1, 0}}));      // a dropped single is fine
  EXPECT_THROW(GroupedMseQuantizer(64, {{64, 3, 12}}), Error);        // norms are 8 or 16 bits
  EXPECT_THROW(GroupedMseQuantizer(64, {{64, 3, 0}}), Error);
}

// A log-byte norm (one group at 8 bits, so the codes barely matter) reproduces the scale of
// its input within half a step, 2^(1/32) − 1 ≈ 2.2%, across 2^±7 of √size; beyond 2^±8 it
// saturates at the byte's ends instead of wrapping; zero stays zero.
TEST(GroupedMseQuantizer, LogByteNormStepAndRange) {
  const int dim = 16;
  GroupedMseQuantizer q(dim, {{dim, 8, 8}});
  EXPECT_EQ(q.record_bytes(), 1u + 16);
  Rng rng(21);
  const auto base = gaussian(rng, dim);
  double n2 = 0;
  for (float x : base) n2 += double(x) * x;
  std::vector<uint8_t> rec(q.record_bytes());
  std::vector<float> y(dim), out(dim);
  auto decoded_scale = [&](double s) {
    for (int i = 0; i < dim; ++i) y[i] = static_cast<float>(base[i] * s);
    q.encode(y.data(), rec.data());
    q.decode(rec.data(), out.data());
    double dot = 0, yy = 0;
    for (int i = 0; i < dim; ++i) {
      dot += double(out[i]) * y[i];
      yy += double(y[i]) * y[i];
    }
    return dot / yy;  // ≈ 1 when the norm came back
  };
  for (double e = -7; e <= 7; e += 0.37) {
    const double s = std::sqrt(dim / n2) * std::exp2(e);
    EXPECT_NEAR(decoded_scale(s), 1.0, 0.022 + 0.004) << "2^" << e;  // + 8-bit codes' own error
  }
  const double top = std::sqrt(dim / n2) * std::exp2(12.0);
  EXPECT_LT(decoded_scale(top), std::exp2(-3.0));  // saturated at 2^(127/16), not wrapped
  EXPECT_GT(decoded_scale(top), 0.0);
  EXPECT_EQ(rec[0], 255);
  const double bottom = std::sqrt(dim / n2) * std::exp2(-12.0);
  EXPECT_GT(decoded_scale(bottom), 8.0);  // saturated at the smallest non-zero code
  EXPECT_EQ(rec[0], 1);
  std::fill(y.begin(), y.end(), 0.f);
  q.encode(y.data(), rec.data());
  EXPECT_EQ(rec[0], 0);
  q.decode(rec.data(), out.data());
  for (float x : out) EXPECT_EQ(x, 0.f);
}

TEST(GroupedMseQuantizer, ZeroBitGroupDecodesToZeros) {
  const int dim = 48;
  GroupedMseQuantizer q(dim, {{16, 4}, {16, 0}, {16, 2}});
  EXPECT_EQ(q.record_bytes(), (2u + 8) + (2 + 4));
  Rng rng(9);
  const auto y = gaussian(rng, dim);
  std::vector<uint8_t> rec(q.record_bytes());
  q.encode(y.data(), rec.data());
  std::vector<float> out(dim, 123.f);
  q.decode(rec.data(), out.data());
  for (int i = 16; i < 32; ++i) EXPECT_EQ(out[i], 0.f) << i;
  for (int i : {0, 15, 32, 47}) EXPECT_NE(out[i], 0.f) << i;
  // A fully dropped layout has no bytes and decodes to zero.
  GroupedMseQuantizer none(8, {{8, 0}});
  EXPECT_EQ(none.record_bytes(), 0u);
  std::vector<float> z(8, 5.f);
  none.decode(nullptr, z.data());
  for (float x : z) EXPECT_EQ(x, 0.f);
}

TEST(GroupedMseQuantizer, ZeroVectorDecodesToZero) {
  GroupedMseQuantizer q(32, {{16, 3}, {16, 5}});
  std::vector<float> y(32, 0.f), out(32, 1.f);
  std::vector<uint8_t> rec(q.record_bytes());
  q.encode(y.data(), rec.data());
  q.decode(rec.data(), out.data());
  for (float x : out) EXPECT_EQ(x, 0.f);
}

// cos θ between v and the levels of its codes, and v·ŷ / ‖v‖².
struct Fidelity {
  double cos, projection;
};
Fidelity fidelity(const std::vector<float>& v, const std::vector<float>& v_hat) {
  double vv = 0, hh = 0, vh = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    vv += double(v[i]) * v[i];
    hh += double(v_hat[i]) * v_hat[i];
    vh += double(v[i]) * v_hat[i];
  }
  return {vh / std::sqrt(vv * hh), vh / vv};
}

// The encoder's scale search against the plain nearest-level codes of v/‖v‖, on groups
// of several sizes, widths and both norm kinds: its codes never point further from v, and
// the stored scale makes v·ŷ = ‖v‖² up to the norm's rounding (fp16: 2^-11; log byte: half
// a step, 2^(1/32) − 1).
TEST(GroupedMseQuantizer, ScaleSearchNeverWorsensTheAngleAndKeepsTheProjection) {
  Rng rng(77);
  int better = 0, total = 0;
  for (int size : {4, 16, 48}) {
    for (int bits : {2, 3, 4, 6}) {
      for (int norm_bits : {8, 16}) {
        GroupedMseQuantizer q(size, {{size, bits, norm_bits}});
        const Codebook& book = lloyd_max_codebook(CoordinateLaw::sphere, size, bits);
        std::vector<uint8_t> rec(q.record_bytes());
        std::vector<float> out(size), plain(size);
        for (int r = 0; r < 200; ++r) {
          const auto v = gaussian(rng, size, 0.1 + 5 * rng.uniform());
          double n2 = 0;
          for (float x : v) n2 += double(x) * x;
          const float inv = static_cast<float>(1 / std::sqrt(n2));
          for (int i = 0; i < size; ++i) plain[i] = book.levels[book.index_of(v[i] * inv)];
          q.encode(v.data(), rec.data());
          q.decode(rec.data(), out.data());
          const Fidelity got = fidelity(v, out), base = fidelity(v, plain);
          ASSERT_GE(got.cos, base.cos - 1e-6) << size << "@" << bits << " norm " << norm_bits;
          EXPECT_NEAR(got.projection, 1.0, norm_bits == 16 ? 1e-3 : 0.0222) << size << "@" << bits;
          better += got.cos > base.cos + 1e-9;
          ++total;
        }
      }
    }
  }
  // The search must find a better direction for a good share of groups, not just tie.
  EXPECT_GT(better, total / 4) << better << " of " << total;
}

// The record encode() writes, written out the plain way, one trial after another (the
// encoder runs them side by side, in SIMD lanes up to 4 bits): per group, ‖v‖ in double; for
// each reciprocal scale s_o = (1/‖v‖)·2^((5−o)/16), o = 0..10 (o = 5 exactly 1/‖v‖ as a float),
// the codes index_of(v·s_o) and the double sums Σc², Σv·c in coordinate order; the winner
// is the largest positive cos² = (Σv·c)²/Σc², o = 5 first and then o = 0 up (the first of
// equal ones wins); its codes are packed and its scale ‖v‖²/Σv·c stored as fp16 or as the
// log byte round(16·log2(scale/√size)) + 128 clamped to [1, 255].
std::vector<uint8_t> written_out_record(const std::vector<QuantGroup>& groups, const float* y) {
  std::vector<uint8_t> rec(GroupedMseQuantizer::layout_bytes(groups), 0);
  size_t off = 0;
  int begin = 0;
  for (const QuantGroup& g : groups) {
    const float* v = y + begin;
    begin += g.size;
    if (g.bits == 0) continue;
    const Codebook& book = lloyd_max_codebook(CoordinateLaw::sphere, g.size, g.bits);
    double n2 = 0;
    for (int i = 0; i < g.size; ++i) n2 += double(v[i]) * v[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(n2));
    std::vector<std::vector<uint8_t>> codes(11, std::vector<uint8_t>(g.size));
    double cc[11] = {}, vc[11] = {};
    for (int o = 0; o < 11; ++o) {
      const float s = o == 5 ? inv : static_cast<float>(inv * std::exp2((5 - o) / 16.0));
      for (int i = 0; i < g.size; ++i) {
        codes[o][i] = static_cast<uint8_t>(book.index_of(v[i] * s));
        const double c = book.levels[codes[o][i]];
        cc[o] = cc[o] + c * c;
        vc[o] = vc[o] + c * double(v[i]);
      }
    }
    int best = 5;
    for (int o : {0, 1, 2, 3, 4, 6, 7, 8, 9, 10})
      if (vc[o] > 0 && vc[o] * vc[o] * cc[best] > vc[best] * vc[best] * cc[o]) best = o;
    const float scale = static_cast<float>(n2 / vc[best]);
    if (g.norm_bits == 16) {
      store_half(rec.data() + off, scale);
    } else {
      const double step = std::round(16 * std::log2(scale / std::sqrt(double(g.size)))) + 128;
      rec[off] = static_cast<uint8_t>(std::clamp(step, 1.0, 255.0));
    }
    off += g.norm_bits / 8;
    pack_bits(codes[best].data(), g.size, g.bits, rec.data() + off);
    off += packed_bytes(g.size, g.bits);
  }
  return rec;
}

// encode() against it byte for byte: every width 1-8 (the lane path up to 4 bits, the
// walk beyond), groups of 2-40 coordinates, both norm kinds, groups of very different
// scales in one vector (1e-3 to 1e3 of each other), 300 vectors.
TEST(GroupedMseQuantizer, EncodeIsTheScaleSearchWrittenOut) {
  Rng rng(4242);
  const std::vector<QuantGroup> groups = {{2, 1, 16}, {3, 2, 8}, {7, 3, 16}, {16, 4, 8}, {40, 2, 8}, {5, 0, 8},
                                          {9, 5, 16}, {12, 6, 8}, {4, 7, 16}, {6, 8, 8},  {24, 3, 8}, {20, 4, 16}};
  int dim = 0;
  for (const QuantGroup& g : groups) dim += g.size;
  const GroupedMseQuantizer q(dim, groups);
  std::vector<uint8_t> rec(q.record_bytes());
  for (int r = 0; r < 300; ++r) {
    std::vector<float> y(dim);
    int begin = 0;
    for (const QuantGroup& g : groups) {
      const double sd = std::pow(10.0, 3 * (2 * rng.uniform() - 1));
      for (int i = 0; i < g.size; ++i) y[begin + i] = static_cast<float>(sd * rng.gaussian());
      begin += g.size;
    }
    q.encode(y.data(), rec.data());
    ASSERT_EQ(rec, written_out_record(groups, y.data())) << "vector " << r;
  }
}

// expected_distortion (what the layout search prices) against fresh groups: within 8% of
// the error measured here on another seed, and below the per-coordinate Lloyd–Max table
// that plain nearest-level coding follows (the scale search's gain), at 3 and 4 bits for a
// small and a large group.
TEST(GroupedMseQuantizer, ExpectedDistortionMatchesFreshGroupsAndBeatsTheTable) {
  Rng rng(4242);
  for (int size : {16, 64}) {
    for (int bits : {3, 4}) {
      for (int norm_bits : {8, 16}) {
        GroupedMseQuantizer q(size, {{size, bits, norm_bits}});
        std::vector<uint8_t> rec(q.record_bytes());
        std::vector<float> out(size);
        double err = 0, energy = 0;
        for (int r = 0; r < 40000 / size; ++r) {
          const auto v = gaussian(rng, size);
          q.encode(v.data(), rec.data());
          q.decode(rec.data(), out.data());
          for (int i = 0; i < size; ++i) {
            err += (double(v[i]) - out[i]) * (double(v[i]) - out[i]);
            energy += double(v[i]) * v[i];
          }
        }
        const double measured = err / energy;
        const double expected = GroupedMseQuantizer::expected_distortion(size, bits, norm_bits);
        const double table = size * lloyd_max_codebook(CoordinateLaw::sphere, size, bits).distortion;
        EXPECT_NEAR(measured / expected, 1.0, 0.08) << size << "@" << bits << " norm " << norm_bits;
        EXPECT_LT(measured, 0.95 * table) << size << "@" << bits << " norm " << norm_bits;
      }
    }
  }
  EXPECT_EQ(GroupedMseQuantizer::expected_distortion(16, 0, 16), 1.0);  // a dropped group loses it all
  EXPECT_THROW(GroupedMseQuantizer::expected_distortion(16, 9, 16), Error);
  EXPECT_THROW(GroupedMseQuantizer::expected_distortion(16, 3, 12), Error);
}

TEST(GroupedMseQuantizer, DotAddsStateOffsetAndMatchesDecode) {
  const int dim = 64;
  const std::vector<std::vector<QuantGroup>> layouts = {
      {{64, 3}}, {{16, 5}, {24, 2}, {8, 0}, {16, 1}}, {{4, 8}, {20, 4}, {40, 0}}};
  Rng rng(3);
  for (const auto& layout : layouts) {
    GroupedMseQuantizer q(dim, layout);
    std::vector<uint8_t> rec(q.record_bytes());
    std::vector<float> state(q.query_state_floats()), y_hat(dim);
    for (int rep = 0; rep < 50; ++rep) {
      const auto y = gaussian(rng, dim, 2.0), qy = gaussian(rng, dim);
      q.encode(y.data(), rec.data());
      q.decode(rec.data(), y_hat.data());
      q.prepare_query(qy.data(), state.data());
      for (int i = 0; i < dim; ++i) ASSERT_EQ(state[i], qy[i]);
      EXPECT_EQ(state[dim], 0.f) << "prepare_query starts the offset at zero";
      const float offset = static_cast<float>(3 * rng.gaussian());
      state[dim] = offset;
      double ref = offset, mag = std::abs(offset), qn = 0, yn = 0;
      for (int i = 0; i < dim; ++i) {
        ref += double(qy[i]) * y_hat[i];
        qn += double(qy[i]) * qy[i];
        yn += double(y_hat[i]) * y_hat[i];
      }
      mag += std::sqrt(qn * yn);
      // Relative to |offset| + ‖q‖‖ŷ‖ (the dot itself may be near zero): float sums only.
      EXPECT_NEAR(q.dot(state.data(), rec.data()), ref, 1e-4 * mag);
      // accumulate adds weight · ŷ.
      std::vector<float> acc(dim, 1.f);
      q.accumulate(rec.data(), 0.25f, acc.data());
      for (int i = 0; i < dim; ++i) EXPECT_NEAR(acc[i], 1.f + 0.25f * y_hat[i], 1e-5f * (1 + std::abs(y_hat[i])));
    }
  }
}

}  // namespace
}  // namespace tq
