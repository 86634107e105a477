#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/half.h"
#include "turboquant/quantizers.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

void random_unit(Rng& rng, std::vector<float>& v) {
  double n2 = 0;
  for (float& x : v) {
    x = static_cast<float>(rng.gaussian());
    n2 += double(x) * x;
  }
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n2));
}

double dotd(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

std::vector<std::tuple<std::string, int>> all_codecs_and_dims() {
  std::vector<std::tuple<std::string, int>> out;
  for (const auto& s : codec_table())
    for (int d : {64, 128, 256}) out.emplace_back(std::string(s.name), d);
  return out;
}

class CodecTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

// Mean decode error on unit vectors within each quantizer's stated bound.
TEST_P(CodecTest, DecodeErrorWithinStatedBound) {
  const auto& [name, d] = GetParam();
  const Codec c = Codec::make(name, d, 17);
  Rng rng(derive_seed(5, d));
  std::vector<float> x(d), y(d), rot(c.code_dim());
  std::vector<uint8_t> rec(c.record_bytes());
  double mse = 0;
  const int n = 300;
  for (int t = 0; t < n; ++t) {
    random_unit(rng, x);
    c.encode(x.data(), rec.data());
    c.decode(rec.data(), y.data());
    double e2 = 0;
    for (int i = 0; i < d; ++i) e2 += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    mse += e2 / n;
    // Per-coordinate worst-case bounds for the scalar baselines, in rotated space.
    c.rotation().forward(x.data(), rot.data());
    std::vector<float> dec(c.code_dim());
    c.quantizer().decode(rec.data(), dec.data());
    const auto& spec = c.spec();
    for (int blk = 0; blk < c.code_dim() / 32 && (spec.quant == QuantKind::q8_0 || spec.quant == QuantKind::q4_0); ++blk) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(rot[32 * blk + j]));
      const float step = spec.quant == QuantKind::q8_0 ? amax / 127 : amax / 8;
      const float bound = spec.quant == QuantKind::q8_0 ? 0.6f * step : 1.01f * step;
      for (int j = 0; j < 32; ++j) ASSERT_LE(std::fabs(rot[32 * blk + j] - dec[32 * blk + j]), bound);
    }
    if (spec.quant == QuantKind::fp8) {  // half an E4M3 step: relative 2^-4, or s·2^-10 when subnormal
      const float s = load_half(rec.data());
      for (int i = 0; i < d; ++i)
        ASSERT_LE(std::fabs(rot[i] - dec[i]), (std::ldexp(std::fabs(rot[i]), -4) + std::ldexp(s, -10)) * 1.00001f);
    }
    if (spec.quant == QuantKind::f16) {
      for (int i = 0; i < d; ++i) ASSERT_LE(std::fabs(rot[i] - dec[i]), std::ldexp(std::fabs(rot[i]), -11) + 1e-7f);
    }
  }
  const auto& q = c.quantizer();
  double bound = 0;
  if (const auto* m = dynamic_cast<const MseQuantizer*>(&q)) {
    const int D = c.code_dim();
    const double lm = (m->n_hi() * m->hi().distortion + (D - m->n_hi()) * m->lo().distortion);
    bound = 1.1 * lm;
  } else if (const auto* p = dynamic_cast<const ProdQuantizer*>(&q)) {
    // QJL dequantization adds (π/2 − 1) of the residual energy: total ≈ (π/2)·D_{b−1}.
    bound = 1.1 * 1.5707963 * c.code_dim() * p->codebook().distortion;
  } else if (const auto* g = dynamic_cast<const GroupQuantizer*>(&q)) {
    // Uniform quantizer on a range of ≈ 5 sigma of N(0,1/d): step²/12 per coordinate.
    const double step = 5.0 / std::sqrt(double(d)) / ((1 << g->bits()) - 1);
    bound = 1.5 * d * step * step / 12;
  } else {
    // fp8: 3 mantissa bits, relative error ~2^-4/√3 per coordinate on unit vectors.
    const QuantKind k = c.spec().quant;
    bound = k == QuantKind::f16 ? 1e-6 : k == QuantKind::q8_0 ? 1e-3 : k == QuantKind::fp8 ? 2e-3 : 2e-2;
  }
  EXPECT_LT(mse, bound) << name << " d=" << d;
}

// The attention primitives agree with decode: dot(prepare(q), rec) == <q, decode(rec)>
// (except prod, whose dot is the unbiased estimator rather than <q, decode>), and
// finish(Σ w accumulate) == Σ w decode.
TEST_P(CodecTest, AttentionPrimitivesMatchDecode) {
  const auto& [name, d] = GetParam();
  const Codec c = Codec::make(name, d, 23);
  Rng rng(derive_seed(6, d));
  std::vector<float> x(d), q(d), y(d), state(c.query_state_floats()), acc(c.code_dim(), 0.f), out(d);
  std::vector<double> want(d, 0.0);
  std::vector<uint8_t> rec(c.record_bytes());
  for (int t = 0; t < 8; ++t) {
    random_unit(rng, x);
    random_unit(rng, q);
    for (float& v : x) v *= 3.f;  // non-unit norms too
    c.encode(x.data(), rec.data());
    c.decode(rec.data(), y.data());
    c.prepare_query(q.data(), state.data());
    if (c.spec().quant != QuantKind::prod) {
      EXPECT_NEAR(c.dot(state.data(), rec.data()), dotd(q, y), 1e-4) << name;
    }
    const float w = 0.1f * (t + 1);
    c.accumulate(rec.data(), w, acc.data());
    for (int i = 0; i < d; ++i) want[i] += w * y[i];
  }
  c.finish(acc.data(), out.data());
  for (int i = 0; i < d; ++i) EXPECT_NEAR(out[i], want[i], 1e-4) << name << " coord " << i;
}

TEST_P(CodecTest, ZeroVectorDecodesToZeroAndNanIsRejected) {
  const auto& [name, d] = GetParam();
  const Codec c = Codec::make(name, d, 1);
  std::vector<float> x(d, 0.f), y(d, 1.f);
  std::vector<uint8_t> rec(c.record_bytes());
  c.encode(x.data(), rec.data());
  c.decode(rec.data(), y.data());
  for (float v : y) EXPECT_EQ(v, 0.f) << name;
  x[d / 2] = std::nanf("");
  EXPECT_THROW(c.encode(x.data(), rec.data()), Error);
  x[d / 2] = INFINITY;
  EXPECT_THROW(c.encode(x.data(), rec.data()), Error);
}

TEST_P(CodecTest, DeterministicBytesPerSeed) {
  const auto& [name, d] = GetParam();
  const Codec a = Codec::make(name, d, 9), b = Codec::make(name, d, 9);
  Rng rng(4);
  std::vector<float> x(d);
  random_unit(rng, x);
  std::vector<uint8_t> ra(a.record_bytes()), rb(b.record_bytes());
  a.encode(x.data(), ra.data());
  b.encode(x.data(), rb.data());
  EXPECT_EQ(ra, rb);
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, CodecTest, ::testing::ValuesIn(all_codecs_and_dims()),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param);
                           for (char& ch : n)
                             if (ch == '.') ch = '_';
                           return n + "_d" + std::to_string(std::get<1>(info.param));
                         });

TEST(Codec, ExactRecordSizesAtD128) {
  const std::pair<const char*, size_t> want[] = {
      {"f16", 256}, {"q8_0", 136}, {"q4_0", 72}, {"q4_0h", 72}, {"turbo1", 18}, {"turbo2", 34},
      {"turbo3", 50}, {"turbo4", 66}, {"turbo2.5", 42}, {"turbo3.5", 58}, {"turbo3p", 52},
      {"rotor3", 50}, {"v3g32", 64}, {"v2g32", 48}};
  for (const auto& [name, bytes] : want) EXPECT_EQ(Codec::make(name, 128).record_bytes(), bytes) << name;
  EXPECT_DOUBLE_EQ(Codec::make("turbo3", 128).bits_per_coord(), 3.125);
}

// TurboQuant_prod's inner-product estimate is unbiased over the random QJL matrix;
// TurboQuant_mse shrinks inner products (its bias is clearly negative), which shows the
// test can tell the two apart.
TEST(Codec, ProdIsUnbiasedAndMseIsNot) {
  const int d = 64, seeds = 150, pairs = 20;
  double s_prod = 0, s2_prod = 0, s_mse = 0, s2_mse = 0;
  Rng rng(77);
  std::vector<float> x(d), w(d), q(d), state;
  for (int s = 0; s < seeds; ++s) {
    const Codec prod = Codec::make("turbo3p", d, 1000 + s), mse = Codec::make("turbo2", d, 1000 + s);
    std::vector<uint8_t> rp(prod.record_bytes()), rm(mse.record_bytes());
    for (int p = 0; p < pairs; ++p) {
      random_unit(rng, x);
      random_unit(rng, w);
      for (int i = 0; i < d; ++i) q[i] = x[i] + w[i];  // <q, x> ≈ 1
      const double truth = dotd(q, x);
      prod.encode(x.data(), rp.data());
      mse.encode(x.data(), rm.data());
      state.resize(prod.query_state_floats());
      prod.prepare_query(q.data(), state.data());
      const double ep = prod.dot(state.data(), rp.data()) - truth;
      state.resize(mse.query_state_floats());
      mse.prepare_query(q.data(), state.data());
      const double em = mse.dot(state.data(), rm.data()) - truth;
      s_prod += ep, s2_prod += ep * ep, s_mse += em, s2_mse += em * em;
    }
  }
  const double n = double(seeds) * pairs;
  const double mp = s_prod / n, se_p = std::sqrt((s2_prod / n - mp * mp) / n);
  const double mm = s_mse / n, se_m = std::sqrt((s2_mse / n - mm * mm) / n);
  EXPECT_LT(std::fabs(mp), 3 * se_p) << "prod bias " << mp << " ± " << se_p;
  EXPECT_LT(mm, -5 * se_m) << "mse bias " << mm << " ± " << se_m;
}

TEST(Codec, CorrectedNormKeepsTheLength) {
  const Codec c = Codec::make("turbo3c", 128, 3);
  Rng rng(2);
  std::vector<float> x(128), y(128);
  std::vector<uint8_t> rec(c.record_bytes());
  for (int t = 0; t < 20; ++t) {
    random_unit(rng, x);
    for (float& v : x) v *= 7.f;
    c.encode(x.data(), rec.data());
    c.decode(rec.data(), y.data());
    EXPECT_NEAR(std::sqrt(dotd(y, y)), 7.0, 7.0 * 1e-3);
  }
}

// llama.cpp q4_0 on a hand-computed block: x_j = j − 16, largest magnitude −16 so
// d = −16/−8 = 2, q_j = min(15, trunc((j − 16)/2 + 8.5)).
TEST(Codec, Q4_0MatchesLlamaCppRounding) {
  const Codec c = Codec::make("q4_0", 32);
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  std::vector<uint8_t> rec(c.record_bytes());
  c.encode(x.data(), rec.data());
  EXPECT_EQ(load_half(rec.data()), 2.f);
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(15, static_cast<int>((j - 16) / 2.0 + 8.5));
    const int q1 = std::min(15, static_cast<int>((j + 16 - 16) / 2.0 + 8.5));
    EXPECT_EQ(rec[2 + j], q0 | (q1 << 4)) << j;
  }
}

TEST(Codec, Q8_0MatchesLlamaCppRounding) {
  const Codec c = Codec::make("q8_0", 32);
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.25f * (j - 10);
  std::vector<uint8_t> rec(c.record_bytes());
  c.encode(x.data(), rec.data());
  const float d = 0.25f * 21 / 127;
  EXPECT_EQ(load_half(rec.data()), round_to_half(d));
  for (int j = 0; j < 32; ++j) EXPECT_EQ(static_cast<int8_t>(rec[2 + j]), static_cast<int>(std::roundf(x[j] / d)));
}

TEST(Codec, BadInputGivesClearErrors) {
  try {
    Codec::make("turbo9", 128);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("turbo9"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("turbo3"), std::string::npos);  // lists the known ones
  }
  EXPECT_THROW(Codec::make("q4_0", 48), Error);   // not a multiple of 32
  EXPECT_THROW(Codec::make("iso3", 66), Error);   // not a multiple of 4
  EXPECT_THROW(Codec::make("turbo3", 4), Error);  // too small
  EXPECT_NO_THROW(Codec::make("rht3", 96));       // padded to 128
  EXPECT_EQ(Codec::make("rht3", 96).code_dim(), 128);
}

}  // namespace
}  // namespace tq

#include "turboquant/blocks.h"

namespace tq {
namespace {

// The reference quantizers write exactly the documented structs.
TEST(Codec, RecordSizesEqualTheLayoutStructs) {
  EXPECT_EQ(Codec::make("turbo3", 128).record_bytes(), sizeof(blocks::MseRecord<128, 3>));
  EXPECT_EQ(Codec::make("rht4", 128).record_bytes(), sizeof(blocks::MseRecord<128, 4>));
  EXPECT_EQ(Codec::make("rotor3", 64).record_bytes(), sizeof(blocks::MseRecord<64, 3>));
  EXPECT_EQ(Codec::make("planar3", 256).record_bytes(), sizeof(blocks::MseRecord<256, 3>));
  EXPECT_EQ(Codec::make("turbo2.5", 128).record_bytes(), sizeof(blocks::MseSplitRecord<128, 3, 2>));
  EXPECT_EQ(Codec::make("turbo3.5", 128).record_bytes(), sizeof(blocks::MseSplitRecord<128, 4, 3>));
  EXPECT_EQ(Codec::make("turbo3p", 128).record_bytes(), sizeof(blocks::ProdRecord<128, 3>));
  EXPECT_EQ(Codec::make("v3g32", 128).record_bytes(), 4 * sizeof(blocks::GroupBlock<32, 3>));
  EXPECT_EQ(Codec::make("q8_0", 128).record_bytes(), 4 * sizeof(blocks::BlockQ8_0));
  EXPECT_EQ(Codec::make("q4_0", 128).record_bytes(), 4 * sizeof(blocks::BlockQ4_0));
}

}  // namespace
}  // namespace tq
