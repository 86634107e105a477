// Sessions on a real (tiny, random) model: saving a prompt, loading it into a freshly
// loaded model and generating gives exactly the tokens and logits of the uninterrupted
// run; a longer prompt continues exactly like a prefill split at the same point; another
// model file, codec or Q/K balance is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "test_model_tiny.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"
#include "turboquant/model.h"
#include "turboquant/sampler.h"
#include "turboquant/session.h"

namespace tq {
namespace {

struct Codecs {
  const char* k;
  const char* v;
  bool balance;
};

std::unique_ptr<Model> load(const std::string& path, bool balance) {
  auto m = Model::load(path, 2);
  if (balance) m->enable_qk_balance();
  return m;
}

// Greedy continuation of `n` tokens from `logits` (the decode loop of tq run).
std::vector<int32_t> generate(Model& m, KvCache& cache, int seq, std::vector<float> logits, int n) {
  std::vector<int32_t> out;
  Rng rng(1);
  for (int i = 0; i < n; ++i) {
    const int32_t next = sample_token(logits.data(), m.config().vocab, SamplerParams{}, rng);
    out.push_back(next);
    m.forward(&next, 1, cache, seq, logits.data(), false);
  }
  return out;
}

const std::vector<int32_t> kPrompt = {1, 260, 250, 262, 200, 263, 259, 120, 99, 261, 262, 263, 40};  // vocab 264

class SessionModel : public ::testing::TestWithParam<Codecs> {};

TEST_P(SessionModel, ContinuingASessionGivesTheUninterruptedTokens) {
  const Codecs c = GetParam();
  test::TempDir tmp;
  const std::string gguf = tmp / "tiny.gguf", file = tmp / "s.tqs";
  test::make_tiny_model(test::TinySpec::llama()).writer.write(gguf);
  const int n_prompt = static_cast<int>(kPrompt.size());

  // The uninterrupted run, which also saves the session after its prompt.
  std::vector<int32_t> want;
  std::vector<float> want_logits;
  {
    auto m = load(gguf, c.balance);
    KvCache cache(m->cache_config(c.k, c.v, 64));
    const int seq = cache.add_sequence();
    std::vector<float> logits(m->config().vocab);
    m->forward(kPrompt.data(), n_prompt, cache, seq, logits.data(), false);
    save_session(Session{model_identity(gguf), c.k, c.v, m->qk_balance(), kPrompt, logits, serialize_cache(cache, {seq})},
                 file, false);
    want_logits = logits;
    want = generate(*m, cache, seq, logits, 12);
  }
  // A new process would do this: load the session, check it, load the model, restore.
  const Session s = load_session(file);
  ASSERT_NO_THROW(check_session_matches(s, model_identity(gguf), c.k, c.v, c.balance));
  auto m = load(gguf, c.balance);
  ASSERT_NO_THROW(check_session_balance(s, m->qk_balance()));
  KvCache cache(m->cache_config(c.k, c.v, 64));
  const int seq = restore_session_cache(s, cache);
  EXPECT_EQ(s.tokens, kPrompt);
  EXPECT_EQ(s.logits, want_logits);  // bit for bit
  EXPECT_EQ(generate(*m, cache, seq, s.logits, 12), want);
}

TEST_P(SessionModel, LongerPromptContinuesLikeASplitPrefill) {
  const Codecs c = GetParam();
  test::TempDir tmp;
  const std::string gguf = tmp / "tiny.gguf";
  test::make_tiny_model(test::TinySpec::gemma3()).writer.write(gguf);
  const int split = 5, n_prompt = static_cast<int>(kPrompt.size());
  auto m = load(gguf, c.balance);
  const int V = m->config().vocab;

  // In one process: prefill the first `split` tokens, then the rest.
  KvCache ref(m->cache_config(c.k, c.v, 64));
  const int rs = ref.add_sequence();
  std::vector<float> logits(V);
  m->forward(kPrompt.data(), split, ref, rs, logits.data(), false);
  const Session s{model_identity(gguf), c.k, c.v, m->qk_balance(),
                  std::vector<int32_t>(kPrompt.begin(), kPrompt.begin() + split), logits, serialize_cache(ref, {rs})};
  m->forward(kPrompt.data() + split, n_prompt - split, ref, rs, logits.data(), false);
  const std::vector<float> want_logits = logits;
  const std::vector<int32_t> want = generate(*m, ref, rs, logits, 8);

  // Through a session file into another model instance.
  const std::string file = tmp / "s.tqs";
  save_session(s, file, false);
  auto m2 = load(gguf, c.balance);
  KvCache cache(m2->cache_config(c.k, c.v, 64));
  const int seq = restore_session_cache(load_session(file), cache);
  std::vector<float> got(V);
  m2->forward(kPrompt.data() + split, n_prompt - split, cache, seq, got.data(), false);
  EXPECT_EQ(got, want_logits);
  EXPECT_EQ(generate(*m2, cache, seq, got, 8), want);
}

INSTANTIATE_TEST_SUITE_P(Codecs, SessionModel,
                         ::testing::Values(Codecs{"f16", "f16", false}, Codecs{"turbo3", "q8_0", true},
                                           Codecs{"rht3", "turbo2.5", false}));

TEST(SessionModelIdentity, AnotherModelFileDiffers) {
  test::TempDir tmp;
  const std::string a = tmp / "a.gguf", b = tmp / "b.gguf", a2 = tmp / "a2.gguf";
  test::TinySpec other = test::TinySpec::llama();
  other.seed = 2;  // same architecture and metadata, other weights: the header alone is equal
  test::make_tiny_model(test::TinySpec::llama()).writer.write(a);
  test::make_tiny_model(other).writer.write(b);
  test::make_tiny_model(test::TinySpec::llama()).writer.write(a2);
  EXPECT_EQ(model_identity(a), model_identity(a2));  // a copy is the same model
  EXPECT_NE(model_identity(a), model_identity(b));
  test::make_tiny_model(test::TinySpec::qwen2()).writer.write(tmp / "q.gguf");
  EXPECT_NE(model_identity(a), model_identity(tmp / "q.gguf"));
  EXPECT_THROW(model_identity(tmp / "missing.gguf"), Error);
}

}  // namespace
}  // namespace tq
