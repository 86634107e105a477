// Codec::make_calibrated with an affine map P = I + 0.3·G/√d (G Gaussian, inverse by
// Gauss–Jordan in double) and a random mean μ, one group of d coordinates at 8 bits.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "calib_test_util.h"
#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/quantizers.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

constexpr int kDim = 64;

std::vector<float> gaussian(Rng& rng, int n, double sd = 1.0) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(sd * rng.gaussian());
  return v;
}

double norm(const std::vector<float>& a) {
  double s = 0;
  for (float x : a) s += double(x) * x;
  return std::sqrt(s);
}

double dist(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s);
}

struct Calibrated {
  Rng rng;
  std::shared_ptr<AffineMap> map;
  Codec codec;
  explicit Calibrated(uint64_t seed, std::vector<QuantGroup> groups = {{kDim, 8}})
      : rng(seed), map(test::random_affine_map(rng, kDim)),
        codec(Codec::make_calibrated(*find_preset("tq3"), map, groups)) {}
};

TEST(CodecCalibrated, MapIsWellConditioned) {
  Calibrated c(1);
  EXPECT_LT(test::map_identity_error(*c.map), 1e-5) << "the test's own inverse";
  EXPECT_EQ(c.codec.dim(), kDim);
  EXPECT_EQ(c.codec.code_dim(), kDim);
  EXPECT_EQ(c.codec.affine(), c.map.get());
  EXPECT_EQ(c.codec.record_bytes(), 2u + kDim);
  EXPECT_EQ(c.codec.query_state_floats(), kDim + 1u);
  EXPECT_EQ(c.codec.name(), "tq3");
}

// 8-bit Lloyd–Max leaves a relative code-space error of about √(4.4e-5) ≈ 7e-3 (Gaussian
// 8-bit distortion 4.41e-5 per unit variance), so the brief's 1e-3 is not reachable at 8
// bits; P⁻¹ (singular values up to ~2.5) can stretch it further. Measured worst over 200
// vectors (seed 2): 2.1e-2; the bound is 3e-2 (mean below 1.5e-2). The exact relation decode = P⁻¹ Q(P(x − μ)) + μ is
// checked separately at float precision.
TEST(CodecCalibrated, EncodeDecodeRoundTrip) {
  Calibrated c(2);
  const Quantizer& qz = c.codec.quantizer();
  std::vector<uint8_t> rec(c.codec.record_bytes());
  std::vector<float> out(kDim), y(kDim), yq(kDim), via(kDim);
  double worst = 0, sum = 0;
  for (int rep = 0; rep < 200; ++rep) {
    const auto x = gaussian(c.rng, kDim);
    c.codec.encode(x.data(), rec.data());
    c.codec.decode(rec.data(), out.data());
    const double rel = dist(out, x) / norm(x);
    worst = std::max(worst, rel);
    sum += rel;
    c.codec.to_code(x.data(), y.data());
    qz.decode(rec.data(), yq.data());
    c.codec.from_code(yq.data(), via.data());
    EXPECT_LT(dist(out, via), 1e-5 * norm(x));
  }
  RecordProperty("worst_rel_x1e4", static_cast<int>(std::lround(1e4 * worst)));
  EXPECT_LT(worst, 3e-2);
  EXPECT_LT(sum / 200, 1.5e-2);
}

TEST(CodecCalibrated, ToCodeFromCodeRoundTrip) {
  Calibrated c(3);
  std::vector<float> y(kDim), back(kDim);
  for (int rep = 0; rep < 50; ++rep) {
    const auto x = gaussian(c.rng, kDim, 2.0);
    c.codec.to_code(x.data(), y.data());
    // y = P (x − μ), computed here in double.
    for (int i = 0; i < kDim; ++i) {
      double s = 0;
      for (int j = 0; j < kDim; ++j) s += double(c.map->matrix[i * kDim + j]) * (double(x[j]) - c.map->mu[j]);
      EXPECT_NEAR(y[i], s, 1e-4 * (1 + std::abs(s)));
    }
    c.codec.from_code(y.data(), back.data());
    EXPECT_LT(dist(back, x), 1e-5 * (norm(x) + 1)) << "P⁻¹ P (x − μ) + μ = x";
  }
}

// dot(prepare_query(q), record) = (P⁻ᵀ q)·Q(y) + q·μ = q·decode(record): equal up to float
// rounding, relative to ‖q‖‖decode‖ (1e-3 as asked; measured ~1e-6).
TEST(CodecCalibrated, DotMatchesDecodedInnerProduct) {
  for (const std::vector<QuantGroup>& groups :
       {std::vector<QuantGroup>{{kDim, 8}}, std::vector<QuantGroup>{{16, 5}, {32, 3}, {16, 0}}}) {
    Calibrated c(4, groups);
    std::vector<uint8_t> rec(c.codec.record_bytes());
    std::vector<float> state(c.codec.query_state_floats()), xd(kDim), y(kDim);
    for (int rep = 0; rep < 100; ++rep) {
      const auto x = gaussian(c.rng, kDim), q = gaussian(c.rng, kDim);
      c.codec.encode(x.data(), rec.data());
      c.codec.decode(rec.data(), xd.data());
      c.codec.prepare_query(q.data(), state.data());
      double ref = 0;
      for (int i = 0; i < kDim; ++i) ref += double(q[i]) * xd[i];
      const double mag = norm(q) * norm(xd);
      EXPECT_NEAR(c.codec.dot(state.data(), rec.data()), ref, 1e-3 * mag);
      // dot_code on an exact code-space vector: q·from_code(y).
      c.codec.to_code(x.data(), y.data());
      double exact = 0;
      for (int i = 0; i < kDim; ++i) exact += double(q[i]) * x[i];
      EXPECT_NEAR(c.codec.dot_code(state.data(), y.data()), exact, 1e-4 * norm(q) * norm(x));
    }
  }
}

// finish(Σ w_i · accumulate(record_i)) with Σ w_i = 1 is Σ w_i decode(record_i): μ is
// added once (the map is affine). Tolerance 1e-4 relative (float sums).
TEST(CodecCalibrated, FinishOfConvexCombination) {
  Calibrated c(5, {{32, 6}, {24, 4}, {8, 0}});
  const int n = 7;
  std::vector<std::vector<uint8_t>> recs(n, std::vector<uint8_t>(c.codec.record_bytes()));
  std::vector<double> w(n);
  double wsum = 0;
  for (double& x : w) wsum += (x = 0.1 + c.rng.uniform());
  for (double& x : w) x /= wsum;
  std::vector<float> acc(c.codec.code_dim(), 0.f), out(kDim), xd(kDim);
  std::vector<double> want(kDim, 0.0);
  for (int i = 0; i < n; ++i) {
    const auto x = gaussian(c.rng, kDim, 1.5);
    c.codec.encode(x.data(), recs[i].data());
    c.codec.accumulate(recs[i].data(), static_cast<float>(w[i]), acc.data());
    c.codec.decode(recs[i].data(), xd.data());
    for (int j = 0; j < kDim; ++j) want[j] += w[i] * xd[j];
  }
  c.codec.finish(acc.data(), out.data());
  double e2 = 0, n2 = 0;
  for (int j = 0; j < kDim; ++j) {
    e2 += (out[j] - want[j]) * (out[j] - want[j]);
    n2 += want[j] * want[j];
  }
  EXPECT_LT(std::sqrt(e2), 1e-4 * std::sqrt(n2));
  // Sanity: μ really is in play (the combination is not μ-free).
  double mu_n = 0;
  for (float m : c.map->mu) mu_n += double(m) * m;
  EXPECT_GT(mu_n, 1.0);
}

TEST(CodecCalibrated, ZeroWidthGroupsDecodeToTheMapOfZero) {
  // All coordinates dropped: every vector decodes to μ (y = 0 ↦ P⁻¹·0 + μ).
  Calibrated c(6, {{kDim, 0}});
  EXPECT_EQ(c.codec.record_bytes(), 0u);
  const auto x = gaussian(c.rng, kDim);
  std::vector<uint8_t> rec(1);
  std::vector<float> out(kDim);
  c.codec.encode(x.data(), rec.data());
  c.codec.decode(rec.data(), out.data());
  for (int i = 0; i < kDim; ++i) EXPECT_NEAR(out[i], c.map->mu[i], 1e-6f);
}

// prepare_queries (a block of queries per read of P⁻ᵀ) sums as prepare_query does: equal
// bit for bit (prepare_query of a calibrated codec is a block of one), for 37 queries (two
// full blocks and a partial one) and for a table codec.
TEST(CodecCalibrated, PrepareQueriesEqualsPrepareQueryBitForBit) {
  Calibrated c(11, {{16, 3}, {kDim - 16, 2}});
  const Codec turbo3 = Codec::make("turbo3", kDim, 4);
  for (const Codec* codec : {static_cast<const Codec*>(&c.codec), &turbo3}) {
    const int n = 37;
    const size_t sf = codec->query_state_floats();
    std::vector<float> q(static_cast<size_t>(n) * kDim), one(n * sf), batch(n * sf);
    for (float& x : q) x = static_cast<float>(c.rng.gaussian());
    std::vector<const float*> qs;
    std::vector<float*> states;
    for (int v = 0; v < n; ++v) {
      codec->prepare_query(q.data() + static_cast<size_t>(v) * kDim, one.data() + v * sf);
      qs.push_back(q.data() + static_cast<size_t>(v) * kDim);
      states.push_back(batch.data() + v * sf);
    }
    codec->prepare_queries(n, qs.data(), states.data());
    for (size_t i = 0; i < one.size(); ++i) ASSERT_EQ(batch[i], one[i]) << codec->name() << " float " << i;
  }
}

// prepare_queries' state is P⁻ᵀq summed over i ascending, each product rounded before its
// add, and q·μ after it: checked bit for bit against that loop written out, at a width with
// whole groups of eight outputs (64) and one with a remainder (20), for blocks of 1 to 11.
TEST(CodecCalibrated, PrepareQueriesSumInOrderAtAnyWidth) {
  for (int d : {64, 20}) {
    Rng rng(12 + d);
    const auto map = test::random_affine_map(rng, d);
    const Codec codec = Codec::make_calibrated(*find_preset("tq3"), map, {{d, 8}});
    ASSERT_EQ(codec.query_state_floats(), static_cast<size_t>(d) + 1);
    for (int n : {1, 3, 8, 11}) {
      std::vector<std::vector<float>> q(n), st(n, std::vector<float>(d + 1));
      std::vector<const float*> qs;
      std::vector<float*> states;
      for (int v = 0; v < n; ++v) {
        q[v] = gaussian(rng, d);
        qs.push_back(q[v].data());
        states.push_back(st[v].data());
      }
      codec.prepare_queries(n, qs.data(), states.data());
      for (int v = 0; v < n; ++v) {
        for (int j = 0; j < d; ++j) {
          float a = 0.f;
          for (int i = 0; i < d; ++i) {
            volatile float p = map->inverse[static_cast<size_t>(i) * d + j] * q[v][i];  // rounded, never fused
            a += p;
          }
          ASSERT_EQ(st[v][j], a) << "d " << d << ", block of " << n << ", query " << v << ", output " << j;
        }
        float c = 0.f;
        for (int i = 0; i < d; ++i) {
          volatile float p = q[v][i] * map->mu[i];
          c += p;
        }
        ASSERT_EQ(st[v][d], c) << "d " << d << ", block of " << n << ", query " << v << ": q.mu";
      }
    }
  }
}

TEST(CodecCalibrated, PresetByNameNeedsAProfile) {
  try {
    Codec::make("tq3", 64);
    FAIL() << "Codec::make(\"tq3\") did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("calibration profile"), std::string::npos) << e.what();
  }
  for (const CodecSpec& p : preset_table()) EXPECT_THROW(Codec::make(p.name, 64), Error) << p.name;
  EXPECT_THROW(Codec::make(*find_preset("tq4"), 64), Error);
}

TEST(CodecCalibrated, MalformedInputsThrow) {
  Rng rng(8);
  auto map = test::random_affine_map(rng, kDim);
  const CodecSpec& tq3 = *find_preset("tq3");
  EXPECT_THROW(Codec::make_calibrated(*find_codec("turbo3"), map, {{kDim, 3}}), Error);  // not a preset
  EXPECT_THROW(Codec::make_calibrated(tq3, nullptr, {{kDim, 3}}), Error);
  EXPECT_THROW(Codec::make_calibrated(tq3, map, {{kDim - 4, 3}}), Error);  // groups short of d
  auto bad = std::make_shared<AffineMap>(*map);
  bad->mu.pop_back();
  EXPECT_THROW(Codec::make_calibrated(tq3, bad, {{kDim, 3}}), Error);
  auto bad2 = std::make_shared<AffineMap>(*map);
  bad2->inverse.resize(10);
  EXPECT_THROW(Codec::make_calibrated(tq3, bad2, {{kDim, 3}}), Error);
  const Codec c = Codec::make_calibrated(tq3, map, {{kDim, 3}});
  std::vector<float> x(kDim, 0.f);
  x[5] = NAN;
  std::vector<uint8_t> rec(c.record_bytes());
  EXPECT_THROW(c.encode(x.data(), rec.data()), Error);
}

}  // namespace
}  // namespace tq
