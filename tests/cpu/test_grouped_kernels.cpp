// The grouped (calibrated) attention kernels, every path this build and CPU have
// (portable, avx2, avx512), against GroupedMseQuantizer's own dot and accumulate on fresh
// random records: fixed layouts (a tq3-like mix, every width 0-8 at odd group sizes, one
// whole-vector group, one run after a dropped one, groups of 2, two of SmolLM2's tq3 K
// layouts, whose leftover lanes share chunks on AVX-512 VBMI, and four runs' leftovers in
// one shared chunk) and random ones, fp16 and
// log-byte norms (read by the vectorized norm row when a layout has <= 16 coded runs with
// their norms in a record's first 128 bytes, else one by one: groups of 2 and the random
// layouts take both), head_dim 64/128/256, 1-37 tokens and 1-9 rows (16 and 37 tokens:
// AVX-512 VBMI keys score whole groups of 16 records with lanes = records,
// grouped_lanes.h, and the rest by chunks; AVX-512 VBMI values take tiles of 16 records,
// norms gathered per tile and folded into the weights, so 1, 7, 16 and 37 tokens run
// partial, whole and whole-plus-tail tiles). The bytes after the last record are random, as
// the kernels may read past it. Tolerance: |fast − reference| <= 2e-5 · (the sum of the
// absolute terms), a float summation-order bound; one wrong code, level or norm moves a
// result by a whole term, about 1/dim of that sum or more.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "attention_test_util.h"
#include "grouped_pack.h"
#include "kernels.h"
#include "turboquant/quantizers.h"

namespace tq {
namespace {

constexpr double kTol = 2e-5;
constexpr size_t kSlack = 64;  // as KvCache::kPoolSlackBytes

// Groups covering `dim`, each {size, bits, norm_bits}; sizes scale with dim / 64.
std::vector<QuantGroup> fixed_layout(int which, int dim) {
  const int u = dim / 64;
  switch (which) {
    case 0:  // tq3-like: loud leading groups wide, the tail narrow or dropped
      return {{4 * u, 6, 16}, {8 * u, 4, 16}, {12 * u, 3, 8}, {20 * u, 2, 8}, {12 * u, 1, 8}, {8 * u, 0, 16}};
    case 1: {  // every width at odd sizes, norms alternating; the rest one 3-bit group
      std::vector<QuantGroup> g;
      int used = 0;
      for (int b = 0; b <= 8; ++b) {
        const int size = 2 + b;
        g.push_back({size, b, b % 2 ? 8 : 16});
        used += size;
      }
      g.push_back({dim - used, 3, 8});
      return g;
    }
    case 2: return {{dim, 3, 8}};
    case 3: return {{8, 0, 16}, {dim - 8, 3, 16}};  // one coded run, not at coordinate 0
    case 4: return std::vector<QuantGroup>(dim / 2, QuantGroup{2, 2, 16});
    case 5: return {{4 * u, 4, 8}, {16 * u, 3, 8}, {44 * u, 2, 8}};  // SmolLM2 tq3 K layers 6, 15, 21
    case 6: return {{4, 4, 8}, {4, 3, 16}, {4, 2, 8}, {dim - 12, 1, 16}};  // four runs' leftovers in one mixed chunk
    default: return {{4 * u, 6, 16}, {12 * u, 4, 8}, {16 * u, 3, 8}, {32 * u, 2, 8}};  // SmolLM2 tq3 K layer 13
  }
}

std::vector<QuantGroup> random_layout(Rng& rng, int dim) {
  std::vector<QuantGroup> g;
  for (int left = dim; left > 0;) {
    int size = 2 + static_cast<int>(rng.below(40));
    if (left - size < 2) size = left;  // no group of 1 left over
    g.push_back({size, static_cast<int>(rng.below(9)), rng.below(2) ? 8 : 16});
    left -= size;
  }
  return g;
}

std::string layout_text(const std::vector<QuantGroup>& groups) {
  std::string s;
  for (const QuantGroup& g : groups)
    s += std::to_string(g.size) + "x" + std::to_string(g.bits) + (g.norm_bits == 8 ? "b " : "h ");
  return s;
}

// The calibrated codec behind an identity map: records are the quantizer's own.
Codec grouped_codec(int dim, const std::vector<QuantGroup>& groups) {
  return Codec::make_calibrated(*find_preset("tq3"), identity_affine_map(dim), groups);
}

// T records of Gaussian vectors, each group at its own scale (some exactly zero), then
// kSlack random bytes.
std::vector<uint8_t> records(Rng& rng, const GroupedMseQuantizer& q, int T) {
  const size_t rb = q.record_bytes();
  std::vector<uint8_t> out(rb * T + kSlack);
  std::vector<float> y(q.dim());
  for (int t = 0; t < T; ++t) {
    for (const auto& r : q.runs()) {
      const float scale = rng.below(8) == 0 ? 0.f : static_cast<float>(std::exp(2.0 * rng.gaussian()));
      for (int i = 0; i < r.size; ++i) y[r.begin + i] = scale * static_cast<float>(rng.gaussian());
    }
    q.encode(y.data(), out.data() + rb * t);
  }
  for (size_t i = rb * T; i < out.size(); ++i) out[i] = static_cast<uint8_t>(rng.below(256));
  return out;
}

struct Kernels {
  const char* path;
  std::unique_ptr<detail::KeyScorer> ks;
  std::unique_ptr<detail::ValueAccumulator> va;
};

// Every path compiled for this build and supported by this CPU; a SIMD path that is
// compiled must take grouped records (head_dim is a multiple of 16).
std::vector<Kernels> every_path(const Codec& c) {
  std::vector<Kernels> out;
  out.push_back({"portable", detail::make_portable_key_scorer(c), detail::make_portable_value_accumulator(c)});
  if (detail::avx2_compiled()) {
    out.push_back({"avx2", detail::make_avx2_key_scorer(c), detail::make_avx2_value_accumulator(c)});
    EXPECT_TRUE(out.back().ks && out.back().va) << "avx2 has no grouped kernel";
  }
  if (detail::avx512_compiled()) {
    out.push_back({"avx512", detail::make_avx512_key_scorer(c), detail::make_avx512_value_accumulator(c)});
    EXPECT_TRUE(out.back().ks && out.back().va) << "avx512 has no grouped kernel";
  }
  return out;
}

// Checks every path on one layout; counts the kernels compared in `checks`.
void check_layout(Rng& rng, int dim, const std::vector<QuantGroup>& groups, int& checks) {
  SCOPED_TRACE("d=" + std::to_string(dim) + " layout " + layout_text(groups));
  const Codec c = grouped_codec(dim, groups);
  const auto& q = static_cast<const GroupedMseQuantizer&>(c.quantizer());
  const size_t rb = q.record_bytes(), sf = c.query_state_floats();
  for (int T : {1, 7, 16, 37})
    for (int R : {1, 3, 9}) {
      const auto recs = records(rng, q, T);
      const auto qs = test::gaussian(rng, sf * R);  // [q, constant] per row
      auto w = test::gaussian(rng, static_cast<size_t>(R) * T);
      for (size_t i = 0; i < w.size(); i += 5) w[i] = 0.f;  // masked tokens
      const auto acc0 = test::gaussian(rng, static_cast<size_t>(R) * dim);
      // Reference and the scale of its terms.
      std::vector<float> ref_s(static_cast<size_t>(R) * T), ref_a = acc0;
      std::vector<double> bound_s(ref_s.size()), bound_a(ref_a.size());
      std::vector<float> y(dim);
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) {
          const uint8_t* rec = recs.data() + rb * t;
          const float* qr = qs.data() + sf * r;
          ref_s[static_cast<size_t>(r) * T + t] = q.dot(qr, rec);
          q.accumulate(rec, w[static_cast<size_t>(r) * T + t], ref_a.data() + static_cast<size_t>(r) * dim);
          q.decode(rec, y.data());
          double b = std::fabs(qr[dim]);
          for (int j = 0; j < dim; ++j) {
            b += std::fabs(double(qr[j]) * y[j]);
            bound_a[static_cast<size_t>(r) * dim + j] += std::fabs(double(w[static_cast<size_t>(r) * T + t]) * y[j]);
          }
          bound_s[static_cast<size_t>(r) * T + t] = b;
        }
      for (size_t i = 0; i < bound_a.size(); ++i) bound_a[i] += std::fabs(acc0[i]);
      for (const Kernels& k : every_path(c)) {
        if (!k.ks || !k.va) continue;
        std::vector<float> states(k.ks->state_floats() * R), s(ref_s.size(), NAN), a = acc0;
        for (int r = 0; r < R; ++r) k.ks->prepare(qs.data() + sf * r, states.data() + k.ks->state_floats() * r);
        k.ks->score(states.data(), R, recs.data(), T, s.data());
        k.va->add(recs.data(), T, w.data(), R, a.data());
        for (size_t i = 0; i < s.size(); ++i)
          ASSERT_LE(std::fabs(double(s[i]) - ref_s[i]), kTol * bound_s[i])
              << k.path << " score row " << i / T << " token " << i % T << " (R=" << R << " T=" << T << "): " << s[i]
              << " vs " << ref_s[i];
        for (size_t i = 0; i < a.size(); ++i)
          ASSERT_LE(std::fabs(double(a[i]) - ref_a[i]), kTol * bound_a[i])
              << k.path << " acc row " << i / dim << " coordinate " << i % dim << " (R=" << R << " T=" << T
              << "): " << a[i] << " vs " << ref_a[i];
        ++checks;
      }
    }
}

class GroupedKernels : public ::testing::TestWithParam<int> {};

TEST_P(GroupedKernels, FixedLayoutsMatchQuantizer) {
  const int dim = GetParam();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Rng rng(seed);
  int checks = 0;
  for (int which = 0; which < 8 && !HasFatalFailure(); ++which) check_layout(rng, dim, fixed_layout(which, dim), checks);
  EXPECT_GE(checks, 8 * 9);  // every layout, T and R, on the portable path at least
}

TEST_P(GroupedKernels, RandomLayoutsMatchQuantizer) {
  const int dim = GetParam();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Rng rng(seed);
  int checks = 0;
  for (int n = 0; n < 6 && !HasFatalFailure(); ++n) check_layout(rng, dim, random_layout(rng, dim), checks);
  EXPECT_GE(checks, 6 * 9);
}

// The packed plan (grouped_pack.h) shares chunks where it should: SmolLM2's head_dim-64
// tq3 K layouts take as many 16-lane chunks as turbo3 (4) when their runs are <= 4 bits.
// Single-run segments of <= 4 bits whose codes start at a byte take the multishift
// decoder (kind 4); the kernel checks above run every layout through it.
TEST(GroupedPack, LeftoversShareChunks) {
  struct Case {
    std::vector<QuantGroup> groups;
    int chunks, mixed, multishift;
  } cases[] = {
      {{{4, 4, 8}, {16, 3, 8}, {44, 2, 8}}, 4, 1, 2},              // 4@4 + 12@2 share one chunk
      {{{4, 4, 8}, {20, 2, 8}, {40, 1, 8}}, 4, 1, 2},              // 4@4 + 4@2 + 8@1
      {{{12, 4, 8}, {32, 3, 8}, {20, 2, 8}}, 4, 1, 2},             // V: 12@4 + 4@2
      {{{8, 5, 8}, {16, 3, 8}, {40, 2, 8}}, 5, 0, 3},              // 32 levels of 5 bits leave no room
      {{{4, 6, 16}, {12, 4, 8}, {16, 3, 8}, {32, 2, 8}}, 5, 0, 3},  // 6 bits: a chunk of their own
  };
  for (const Case& c : cases) {
    const Codec codec = grouped_codec(64, c.groups);
    const detail::GroupedLayout layout(static_cast<const GroupedMseQuantizer&>(codec.quantizer()));
    const detail::PackedPlan plan = detail::pack_chunks(layout);
    EXPECT_EQ(plan.n_chunks, c.chunks) << layout_text(c.groups);
    EXPECT_EQ(plan.count[1], c.mixed) << layout_text(c.groups);
    EXPECT_EQ(plan.count[4], c.multishift) << layout_text(c.groups);
  }
}

// Fixed layout 6 puts four runs' leftovers (4, 3, 2 and 1 bits, log and fp16 norms) in
// one mixed chunk, so the value kernel's lane norms take more than two runs.
TEST(GroupedPack, FourRunsShareAMixedChunk) {
  for (int dim : {64, 128, 256}) {
    const Codec codec = grouped_codec(dim, fixed_layout(6, dim));
    const detail::GroupedLayout layout(static_cast<const GroupedMseQuantizer&>(codec.quantizer()));
    const detail::PackedPlan plan = detail::pack_chunks(layout);
    ASSERT_EQ(plan.count[1], 1) << dim;
    for (const detail::PackedChunk& c : plan.chunks) {
      if (c.kind != 1) continue;
      std::vector<int> runs;
      for (int l = 0; l < 16; ++l)
        if (c.coord[l] >= 0 && (runs.empty() || runs.back() != c.norm_run[l])) runs.push_back(c.norm_run[l]);
      EXPECT_EQ(runs.size(), 4u) << dim;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(HeadDims, GroupedKernels, ::testing::Values(64, 128, 256));

}  // namespace
}  // namespace tq
