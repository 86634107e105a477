// tq::Model's forward pass on tiny random models of each family, against the naive
// reference in test_model_tiny.h, and its cache behaviour (incremental decode,
// chunked prefill, compressed codecs, several sequences).
#include <gtest/gtest.h>

#include "turboquant/error.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "test_model_tiny.h"
#include "turboquant/kv_cache.h"
#include "turboquant/model.h"

namespace tq {
namespace {

using test::random_tokens;
using test::TinySpec;

std::string write_model(const test::TinyModel& m, const std::string& tag) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tq_tiny_" + tag + "_" + std::to_string(::getpid()) + ".gguf")).string();
  m.writer.write(path, /*overwrite=*/true);
  return path;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

float max_abs(const std::vector<float>& a) {
  float m = 0;
  for (float x : a) m = std::max(m, std::abs(x));
  return m;
}

struct Loaded {
  test::TinyModel tiny;
  std::unique_ptr<Model> model;
};

Loaded load_tiny(const TinySpec& spec) {
  Loaded l{test::make_tiny_model(spec), nullptr};
  const std::string path = write_model(l.tiny, spec.arch);
  l.model = Model::load(path, 2);
  std::filesystem::remove(path);
  return l;
}

std::vector<float> run_prefill(Model& model, const std::vector<int32_t>& tokens, const std::string& k_codec,
                               const std::string& v_codec) {
  KvCache cache(model.cache_config(k_codec, v_codec, 1024));
  const int seq = cache.add_sequence();
  std::vector<float> logits(tokens.size() * model.config().vocab);
  model.forward(tokens.data(), static_cast<int>(tokens.size()), cache, seq, logits.data(), true);
  return logits;
}

class ForwardFamily : public ::testing::TestWithParam<std::string> {
 protected:
  TinySpec spec() const {
    const std::string& a = GetParam();
    return a == "llama" ? TinySpec::llama() : a == "qwen2" ? TinySpec::qwen2() : TinySpec::gemma3();
  }
};

// The f16 cache rounds K and V to half precision, the reference keeps f32: logits
// agree to a few 1e-3 of their scale.
TEST_P(ForwardFamily, PrefillMatchesNaiveReference) {
  Loaded l = load_tiny(spec());
  const auto tokens = random_tokens(19, l.tiny.vocab, 7);
  const std::vector<float> got = run_prefill(*l.model, tokens, "f16", "f16");
  const std::vector<float> want = test::reference_logits(l.tiny, tokens);
  ASSERT_EQ(got.size(), want.size());
  const float scale = max_abs(want);
  ASSERT_GT(scale, 0.1f);
  EXPECT_LT(max_abs_diff(got.data(), want.data(), got.size()), 5e-3f * scale) << "logit scale " << scale;
}

// Prefill of more tokens than one internal chunk (256) exercises chunk boundaries,
// where positions continue from the cache.
TEST_P(ForwardFamily, LongPrefillCrossesChunks) {
  Loaded l = load_tiny(spec());
  const auto tokens = random_tokens(300, l.tiny.vocab, 8);
  const std::vector<float> got = run_prefill(*l.model, tokens, "f16", "f16");
  const std::vector<float> want = test::reference_logits(l.tiny, tokens);
  const float scale = max_abs(want);
  EXPECT_LT(max_abs_diff(got.data(), want.data(), got.size()), 1e-2f * scale);
}

TEST_P(ForwardFamily, IncrementalDecodeEqualsPrefill) {
  Loaded l = load_tiny(spec());
  const int V = l.tiny.vocab;
  const auto tokens = random_tokens(14, V, 9);
  const std::vector<float> full = run_prefill(*l.model, tokens, "f16", "f16");
  // Matrix–matrix and matrix–vector products sum in different orders, and an f16 K/V
  // rounding may flip with them: equal to ~1e-4 of the logit scale, where a wrong
  // position or a lost cache entry would move logits by O(scale).
  const float tol = 1e-4f * max_abs(full);
  // Prefill 5 tokens, then one token at a time (last-token logits only).
  KvCache cache(l.model->cache_config("f16", "f16", 64));
  const int seq = cache.add_sequence();
  std::vector<float> logits(V);
  l.model->forward(tokens.data(), 5, cache, seq, logits.data(), false);
  EXPECT_LT(max_abs_diff(logits.data(), full.data() + 4 * V, V), tol);
  for (int t = 5; t < static_cast<int>(tokens.size()); ++t) {
    l.model->forward(&tokens[t], 1, cache, seq, logits.data(), false);
    EXPECT_LT(max_abs_diff(logits.data(), full.data() + size_t(t) * V, V), tol) << "position " << t;
  }
  EXPECT_EQ(cache.length(0, seq), static_cast<int>(tokens.size()));
}

// Weights stored as Q8_0 and Q4_0, kept quantized: prefill (dequantized tiles, f32
// products) matches the reference on the dequantized weights as tightly as F32 files do;
// decode one token at a time (8-bit activations) stays within the activation rounding,
// measured at most 1.2% of the logit scale over the three families and both types, bound 3%.
TEST_P(ForwardFamily, QuantizedWeightsMatchReference) {
  for (const auto type : {gguf::GgmlType::Q8_0, gguf::GgmlType::Q4_0}) {
    TinySpec s = spec();
    s.matrix_type = type;
    Loaded l = load_tiny(s);
    const int V = l.tiny.vocab;
    const auto tokens = random_tokens(12, V, 11);
    const std::vector<float> want = test::reference_logits(l.tiny, tokens);
    const float scale = max_abs(want);
    const std::vector<float> got = run_prefill(*l.model, tokens, "f16", "f16");
    EXPECT_LT(max_abs_diff(got.data(), want.data(), got.size()), 5e-3f * scale) << gguf::type_name(type);
    KvCache cache(l.model->cache_config("f16", "f16", 64));
    const int seq = cache.add_sequence();
    std::vector<float> logits(V);
    float worst = 0;
    for (int t = 0; t < static_cast<int>(tokens.size()); ++t) {
      l.model->forward(&tokens[t], 1, cache, seq, logits.data(), false);
      worst = std::max(worst, max_abs_diff(logits.data(), want.data() + size_t(t) * V, V));
    }
    std::printf("%s %s: decode max |diff| %.4f of logit scale %.3f (%.2f%%)\n", GetParam().c_str(),
                std::string(gguf::type_name(type)).c_str(), worst, scale, 100 * worst / scale);
    EXPECT_LT(worst, 3e-2f * scale) << gguf::type_name(type);
  }
}

// A 4-bit compressed cache changes the logits a little, not the picture.
TEST_P(ForwardFamily, CompressedCacheCloseToF16) {
  Loaded l = load_tiny(spec());
  const auto tokens = random_tokens(40, l.tiny.vocab, 10);
  const std::vector<float> f16 = run_prefill(*l.model, tokens, "f16", "f16");
  const std::vector<float> t4 = run_prefill(*l.model, tokens, "turbo4", "turbo4");
  double dot = 0, n1 = 0, n2 = 0;
  for (size_t i = 0; i < f16.size(); ++i) {
    dot += double(f16[i]) * t4[i];
    n1 += double(f16[i]) * f16[i];
    n2 += double(t4[i]) * t4[i];
  }
  // Random tiny models attend sharply (Gemma's QK-norm most), so 4-bit keys show more
  // than on real models; a broken codec path gives cosines far below this.
  const double cosine = dot / std::sqrt(n1 * n2);
  EXPECT_GT(cosine, 0.98);
  EXPECT_GT(max_abs_diff(f16.data(), t4.data(), f16.size()), 0.f) << "the codec should change something";
}

// The Q/K balance rescales keys and queries but leaves every score as it was: with an f16
// cache the logits stay within half-precision rounding of the unbalanced run.
TEST_P(ForwardFamily, QkBalanceKeepsTheLogits) {
  Loaded l = load_tiny(spec());
  const auto tokens = random_tokens(40, l.tiny.vocab, 11);
  const std::vector<float> plain = run_prefill(*l.model, tokens, "f16", "f16");
  const QkBalance bal = l.model->calibrate_qk_balance(random_tokens(64, l.tiny.vocab, 12));
  ASSERT_FALSE(bal.empty());
  bool scaled = false;
  for (int i = 0; i < l.model->config().head_dim; ++i) scaled |= std::abs(bal.scale(0, 0)[i] - 1.0f) > 1e-3f;
  EXPECT_TRUE(scaled) << "calibration on a random model should not give the identity";
  l.model->set_qk_balance(bal);
  const std::vector<float> balanced = run_prefill(*l.model, tokens, "f16", "f16");
  EXPECT_LT(max_abs_diff(plain.data(), balanced.data(), plain.size()), 5e-3f * max_abs(plain));
  l.model->set_qk_balance(QkBalance());
  EXPECT_EQ(run_prefill(*l.model, tokens, "f16", "f16"), plain) << "clearing the balance restores the run exactly";
}

TEST(Forward, QkBalanceRejectsWrongShapesAndTooFewTokens) {
  Loaded l = load_tiny(TinySpec::llama());
  const ModelConfig& c = l.model->config();
  QkBalance wrong(c.n_layers + 1, c.n_kv_heads, c.head_dim,
                  std::vector<float>(size_t(c.n_layers + 1) * c.n_kv_heads * c.head_dim, 1.0f));
  EXPECT_THROW(l.model->set_qk_balance(std::move(wrong)), tq::Error);
  EXPECT_THROW(l.model->calibrate_qk_balance({1}), tq::Error);
  EXPECT_GT(l.model->enable_qk_balance(), 100) << "the built-in calibration text";
  EXPECT_FALSE(l.model->qk_balance().empty());
}

INSTANTIATE_TEST_SUITE_P(Families, ForwardFamily, ::testing::Values("llama", "qwen2", "gemma3"));

TEST(Forward, ConfigReadFromMetadata) {
  Loaded l = load_tiny(TinySpec::gemma3());
  const ModelConfig& c = l.model->config();
  EXPECT_EQ(c.arch, "gemma3");
  EXPECT_EQ(c.n_layers, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab, l.tiny.vocab);
  EXPECT_TRUE(c.tied_output);
  EXPECT_TRUE(c.rope_neox);
  EXPECT_EQ(c.layer_sliding, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(l.model->attention_params(0).window, 5);
  EXPECT_EQ(l.model->attention_params(1).window, 0);
  EXPECT_FLOAT_EQ(l.model->attention_params(1).scale, 0.125f);
  EXPECT_FLOAT_EQ(c.rope_freq_scale, 0.5f);
  Loaded ll = load_tiny(TinySpec::llama());
  EXPECT_FALSE(ll.model->config().rope_neox);
  EXPECT_FALSE(ll.model->config().tied_output);
}

TEST(Forward, SequencesAreIndependent) {
  Loaded l = load_tiny(TinySpec::qwen2());
  const int V = l.tiny.vocab;
  const auto a = random_tokens(9, V, 11), b = random_tokens(6, V, 12);
  KvCache cache(l.model->cache_config("turbo3", "turbo3", 128));
  const int sa = cache.add_sequence(), sb = cache.add_sequence();
  std::vector<float> la(V), lb(V), alone(V);
  l.model->forward(a.data(), 4, cache, sa, la.data(), false);
  l.model->forward(b.data(), 6, cache, sb, lb.data(), false);
  l.model->forward(a.data() + 4, 5, cache, sa, la.data(), false);
  KvCache solo(l.model->cache_config("turbo3", "turbo3", 128));
  const int s = solo.add_sequence();
  l.model->forward(a.data(), 9, solo, s, alone.data(), false);
  EXPECT_LT(max_abs_diff(la.data(), alone.data(), V), 1e-4f);
}

struct Recorder : ForwardObserver {
  std::vector<std::pair<int, int>> calls;  // (layer, pos0)
  std::vector<float> k0;                   // layer 0 keys
  int kv_floats = 0;
  void on_qkv(int layer, int pos0, int n, const float*, const float* k, const float*) override {
    calls.emplace_back(layer, pos0);
    if (layer == 0) k0.insert(k0.end(), k, k + size_t(n) * kv_floats);
  }
};

// The observer sees every layer once per call, at the right positions, and the keys it
// sees are the ones the f16 cache stored.
TEST(Forward, ObserverSeesEveryLayer) {
  Loaded l = load_tiny(TinySpec::llama());
  const ModelConfig& c = l.model->config();
  const auto tokens = random_tokens(7, l.tiny.vocab, 13);
  KvCache cache(l.model->cache_config("f16", "f16", 64));
  const int seq = cache.add_sequence();
  std::vector<float> logits(c.vocab);
  Recorder rec;
  rec.kv_floats = c.n_kv_heads * c.head_dim;
  l.model->forward(tokens.data(), 4, cache, seq, logits.data(), false, &rec);
  l.model->forward(tokens.data() + 4, 3, cache, seq, logits.data(), false, &rec);
  ASSERT_EQ(rec.calls.size(), size_t(2 * c.n_layers));
  EXPECT_EQ(rec.calls[0], std::make_pair(0, 0));
  EXPECT_EQ(rec.calls[c.n_layers], std::make_pair(0, 4));
  ASSERT_EQ(rec.k0.size(), size_t(7) * rec.kv_floats);
  std::vector<float> dec(c.head_dim);
  for (int pos = 0; pos < 7; ++pos) {
    for (int h = 0; h < c.n_kv_heads; ++h) {
      cache.k_codec(0, h).decode(cache.k_record(0, seq, h, pos), dec.data());
      const float* want = rec.k0.data() + (size_t(pos) * c.n_kv_heads + h) * c.head_dim;
      EXPECT_LT(max_abs_diff(dec.data(), want, c.head_dim), 1e-2f);
    }
  }
}

TEST(Forward, LastLogitsEqualLastRowOfAll) {
  Loaded l = load_tiny(TinySpec::gemma3());
  const int V = l.tiny.vocab;
  const auto tokens = random_tokens(12, V, 14);
  const std::vector<float> all = run_prefill(*l.model, tokens, "q8_0", "q8_0");
  KvCache cache(l.model->cache_config("q8_0", "q8_0", 64));
  const int seq = cache.add_sequence();
  std::vector<float> last(V);
  l.model->forward(tokens.data(), 12, cache, seq, last.data(), false);
  EXPECT_LT(max_abs_diff(last.data(), all.data() + 11 * V, V), 1e-4f);
}

}  // namespace
}  // namespace tq
