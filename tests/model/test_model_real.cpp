// The two real models (installed by scripts/setup_models.sh; skipped when absent): a
// factual prompt must continue with the right answer, with an f16 cache and with a
// 3-bit compressed one. (Gemma 3 270M is a base model: the plain question makes it
// repeat the phrase, so the prompt shows the pattern once.)
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/model.h"

namespace tq {
namespace {

std::unique_ptr<Model> load_or_skip(const std::string& name, std::string* skip) {
  try {
    return Model::load(resolve_model_path(name), 0);
  } catch (const Error& e) {
    *skip = e.what();
    return nullptr;
  }
}

// Greedy continuation of `prompt`, `n` tokens, decoded.
std::string greedy(Model& model, const std::string& prompt, const std::string& codec, int n) {
  const Tokenizer& tok = model.tokenizer();
  std::vector<int32_t> ids = tok.encode(prompt, tok.add_bos_default());
  KvCache cache(model.cache_config(codec, codec, 256));
  const int seq = cache.add_sequence();
  std::vector<float> logits(model.config().vocab);
  model.forward(ids.data(), static_cast<int>(ids.size()), cache, seq, logits.data(), false);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    if (tok.is_eog(next)) break;
    model.forward(&next, 1, cache, seq, logits.data(), false);
  }
  return tok.decode(out);
}

class RealModel : public ::testing::TestWithParam<std::string> {};

TEST_P(RealModel, AnswersCapitalOfFrance) {
  std::string why;
  auto model = load_or_skip(GetParam(), &why);
  if (!model) GTEST_SKIP() << why;
  for (const char* codec : {"f16", "turbo3"}) {
    const std::string text = greedy(*model, "The capital of Italy is Rome. The capital of France is", codec, 4);
    EXPECT_NE(text.find("Paris"), std::string::npos) << codec << ": \"" << text << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(Installed, RealModel, ::testing::Values("smollm2", "gemma3"));

}  // namespace
}  // namespace tq
