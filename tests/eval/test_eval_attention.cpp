// Attention fidelity: exact cases (f16 against itself, a one-token window) and the
// ordering of codecs by precision on random captures.
#include <gtest/gtest.h>

#include <cmath>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/eval_attention.h"
#include "turboquant/eval_metrics.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

LayerCapture random_capture(const AttentionSpec& s, int n, std::vector<int> qpos, uint64_t seed) {
  Rng rng(seed);
  LayerCapture c;
  c.n_tokens = n;
  c.query_pos = std::move(qpos);
  auto fill = [&](std::vector<float>& v, size_t count, double scale) {
    v.resize(count);
    for (auto& x : v) x = static_cast<float>(rng.gaussian() * scale);
  };
  fill(c.keys, static_cast<size_t>(n) * s.n_kv_heads * s.head_dim, 1.0);
  fill(c.values, static_cast<size_t>(n) * s.n_kv_heads * s.head_dim, 1.0);
  fill(c.queries, c.query_pos.size() * s.n_heads * s.head_dim, 1.0);
  return c;
}

double mean_cosine(const std::vector<HeadFidelity>& f) {
  double s = 0;
  for (const auto& h : f) s += h.cosine;
  return s / f.size();
}

TEST(EvalAttention, F16AgainstItselfIsExact) {
  const AttentionSpec s{4, 2, 64, 0.125f, 0, 0.0f};
  const LayerCapture c = random_capture(s, 40, {10, 25, 39}, 1);
  const auto f = attention_fidelity(s, c, 0, "f16", "f16", 0);
  ASSERT_EQ(f.size(), 4u);
  for (const auto& h : f) {
    EXPECT_EQ(h.queries, 3);
    EXPECT_NEAR(h.cosine, 1.0, 1e-12);
    EXPECT_EQ(h.top1, 1.0);
    EXPECT_EQ(h.top5, 1.0);
  }
}

TEST(EvalAttention, OneTokenWindowReturnsTheDecodedValue) {
  // With window 1 each query attends to its own token with weight 1, so the output is
  // that token's decoded value: the cosine is cos(decode_f16(v), decode_codec(v)).
  const AttentionSpec s{2, 1, 64, 0.125f, 1, 0.0f};
  const LayerCapture c = random_capture(s, 8, {7}, 2);
  const int layer = 3;
  const auto f = attention_fidelity(s, c, layer, "f16", "turbo2", 5);
  const Codec v16 = Codec::make("f16", 64, derive_seed(5, layer * 65536 + 1));
  const Codec v2 = Codec::make("turbo2", 64, derive_seed(5, layer * 65536 + 1));
  std::vector<uint8_t> r16(v16.record_bytes()), r2(v2.record_bytes());
  std::vector<float> a(64), b(64);
  v16.encode(c.values.data() + 7 * 64, r16.data());
  v16.decode(r16.data(), a.data());
  v2.encode(c.values.data() + 7 * 64, r2.data());
  v2.decode(r2.data(), b.data());
  const double expected = cosine(a.data(), b.data(), 64);
  EXPECT_LT(expected, 0.99);  // turbo2 is coarse enough for this to mean something
  for (const auto& h : f) {
    EXPECT_NEAR(h.cosine, expected, 1e-5);
    EXPECT_EQ(h.top1, 1.0);
  }
}

TEST(EvalAttention, FinerCodecsAreCloserToF16) {
  const AttentionSpec s{4, 2, 128, 1.0f / std::sqrt(128.0f), 0, 0.0f};
  const LayerCapture c = random_capture(s, 96, {40, 60, 80, 95}, 3);
  const double q8 = mean_cosine(attention_fidelity(s, c, 0, "q8_0", "q8_0", 0));
  const double t4 = mean_cosine(attention_fidelity(s, c, 0, "turbo4", "turbo4", 0));
  const double t2 = mean_cosine(attention_fidelity(s, c, 0, "turbo2", "turbo2", 0));
  EXPECT_GT(q8, 0.999);
  EXPECT_GT(q8, t4);
  EXPECT_GT(t4, t2);
  EXPECT_GT(t2, 0.5);
}

TEST(EvalAttention, SoftcapAndWindowChangeTheReferenceNotTheExactness) {
  const AttentionSpec s{2, 2, 64, 1.0f, 4, 5.0f};
  const LayerCapture c = random_capture(s, 20, {19}, 4);
  for (const auto& h : attention_fidelity(s, c, 0, "f16", "f16", 0)) EXPECT_NEAR(h.cosine, 1.0, 1e-12);
}

TEST(EvalAttention, SeveralCodecsAgainstOneReferenceEqualOneAtATime) {
  const AttentionSpec s{4, 2, 64, 0.125f, 24, 0.0f};
  const LayerCapture cap = random_capture(s, 80, {10, 40, 79}, 5);
  const std::vector<CodecPair> codecs{{"q8_0", "q8_0"}, {"turbo3", "turbo2"}, {"f16", "f16"}, {"rht3", "f16"}};
  const auto all = attention_fidelity(s, cap, 3, codecs, 9);
  ASSERT_EQ(all.size(), codecs.size());
  for (size_t c = 0; c < codecs.size(); ++c) {
    const auto one = attention_fidelity(s, cap, 3, codecs[c].first, codecs[c].second, 9);
    ASSERT_EQ(all[c].size(), one.size());
    for (size_t h = 0; h < one.size(); ++h) {
      EXPECT_EQ(all[c][h].cosine, one[h].cosine) << codecs[c].first << " head " << h;
      EXPECT_EQ(all[c][h].top1, one[h].top1);
      EXPECT_EQ(all[c][h].top5, one[h].top5);
      EXPECT_EQ(all[c][h].queries, 3);
    }
  }
  EXPECT_NEAR(all[2][0].cosine, 1.0, 1e-12);  // f16 against its own reference
  EXPECT_LT(mean_cosine(all[1]), mean_cosine(all[0]));
  EXPECT_TRUE(attention_fidelity(s, cap, 3, std::vector<CodecPair>{}, 9).empty());
}

TEST(EvalAttention, BadShapesAreErrors) {
  const AttentionSpec s{3, 2, 64, 1.0f, 0, 0.0f};
  const LayerCapture c = random_capture(AttentionSpec{4, 2, 64, 1.0f, 0, 0.0f}, 8, {7}, 5);
  EXPECT_THROW(attention_fidelity(s, c, 0, "f16", "f16", 0), Error);  // 3 heads over 2 KV heads
  const AttentionSpec ok{4, 2, 64, 1.0f, 0, 0.0f};
  LayerCapture bad = c;
  bad.query_pos = {8};
  EXPECT_THROW(attention_fidelity(ok, bad, 0, "f16", "f16", 0), Error);
  bad = c;
  bad.keys.pop_back();
  EXPECT_THROW(attention_fidelity(ok, bad, 0, "f16", "f16", 0), Error);
  EXPECT_THROW(attention_fidelity(ok, c, 0, "nosuchcodec", "f16", 0), Error);
}

}  // namespace
}  // namespace tq
