// Metric functions of `tq eval` against values computed by hand.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <numeric>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/eval_metrics.h"
#include "turboquant/eval_passkey.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

TEST(EvalMetrics, LogSoftmaxOfTwoLogits) {
  // softmax(0, ln 3) = (1/4, 3/4).
  const float logits[] = {0.0f, std::log(3.0f)};
  std::vector<double> out;
  log_softmax(logits, 2, out);
  EXPECT_NEAR(out[0], std::log(0.25), 1e-7);
  EXPECT_NEAR(out[1], std::log(0.75), 1e-7);
}

TEST(EvalMetrics, NegativeLogLikelihoodByHand) {
  // −log(e / (e + e² + e³)) = ln(e + e² + e³) − 1 = 2.40760596444438.
  const float logits[] = {1, 2, 3};
  EXPECT_NEAR(negative_log_likelihood(logits, 3, 0), 2.40760596444438, 1e-6);
  // Shifting every logit changes nothing (and large logits must not overflow).
  const float shifted[] = {1001, 1002, 1003};
  EXPECT_NEAR(negative_log_likelihood(shifted, 3, 0), 2.40760596444438, 1e-4);
  EXPECT_THROW(negative_log_likelihood(logits, 3, 3), Error);
  EXPECT_THROW(negative_log_likelihood(logits, 3, -1), Error);
}

TEST(EvalMetrics, KlDivergenceByHand) {
  // P = (1/2, 1/2), Q = (1/4, 3/4): ½ ln 2 + ½ ln(2/3) = 0.143841036225890.
  const float p[] = {0, 0};
  const float q[] = {0, std::log(3.0f)};
  EXPECT_NEAR(kl_divergence(p, q, 2), 0.143841036225890, 1e-7);
  // Not symmetric: KL(Q‖P) = ¼ ln ½ + ¾ ln(3/2) = 0.130812035941137.
  EXPECT_NEAR(kl_divergence(q, p, 2), 0.130812035941137, 1e-7);
  EXPECT_EQ(kl_divergence(p, p, 2), 0.0);
}

TEST(EvalMetrics, ArgmaxAndTopK) {
  const float x[] = {0.1f, 0.9f, 0.5f, 0.9f, -2.0f};
  EXPECT_EQ(top_k(x, 5, 1), (std::vector<int>{1}));
  EXPECT_EQ(top_k(x, 5, 3), (std::vector<int>{1, 3, 2}));  // ties: lower index first
  EXPECT_EQ(top_k(x, 5, 9).size(), 5u);
}

TEST(EvalMetrics, CosineByHand) {
  const float a[] = {1, 0}, b[] = {1, 1}, z[] = {0, 0}, c[] = {-2, 0};
  EXPECT_NEAR(cosine(a, b, 2), 1.0 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(cosine(a, c, 2), -1.0, 1e-12);
  EXPECT_EQ(cosine(z, z, 2), 1.0);
  EXPECT_EQ(cosine(a, z, 2), 0.0);
}

TEST(EvalMetrics, Perplexity) {
  EXPECT_NEAR(perplexity(2 * std::log(4.0), 2), 4.0, 1e-12);
  EXPECT_THROW(perplexity(1.0, 0), Error);
}

TEST(EvalMetrics, CompareNextTokenAgreesWithTheSeparateFunctions) {
  const float ref[] = {0.3f, -1.0f, 2.0f, 0.7f};
  const float test[] = {0.2f, -0.8f, 1.5f, 1.2f};
  const NextTokenComparison c = compare_next_token(ref, test, 4, 3);
  EXPECT_NEAR(c.nll_ref, negative_log_likelihood(ref, 4, 3), 1e-12);
  EXPECT_NEAR(c.nll_test, negative_log_likelihood(test, 4, 3), 1e-12);
  EXPECT_NEAR(c.kl, kl_divergence(ref, test, 4), 1e-12);
  EXPECT_TRUE(c.top1_agree);  // both argmax at 2
  const float other[] = {0.2f, -0.8f, 1.5f, 1.7f};
  EXPECT_FALSE(compare_next_token(ref, other, 4, 0).top1_agree);
}

TEST(EvalMetrics, SharedReferenceDistributionGivesTheSameComparisonBitForBit) {
  Rng rng(11);
  const int vocab = 1000;
  std::vector<float> ref(vocab), test(vocab);
  for (int i = 0; i < vocab; ++i) {
    ref[i] = static_cast<float>(4 * rng.gaussian());
    test[i] = ref[i] + static_cast<float>(0.3 * rng.gaussian());
  }
  ReferenceDistribution rd;
  reference_distribution(ref.data(), vocab, rd);
  EXPECT_EQ(rd.argmax, top_k(ref.data(), vocab, 1)[0]);
  EXPECT_NEAR(std::accumulate(rd.probs.begin(), rd.probs.end(), 0.0), 1.0, 1e-12);
  EXPECT_EQ(rd.lse - ref[17], negative_log_likelihood(ref.data(), vocab, 17));
  for (int target : {0, 17, vocab - 1}) {
    const NextTokenComparison a = compare_next_token(ref.data(), test.data(), vocab, target);
    const NextTokenComparison b = compare_next_token(ref.data(), rd, test.data(), vocab, target);
    EXPECT_EQ(a.nll_ref, b.nll_ref);
    EXPECT_EQ(a.nll_test, b.nll_test);
    EXPECT_EQ(a.kl, b.kl);
    EXPECT_EQ(a.top1_agree, b.top1_agree);
    EXPECT_GT(b.kl, 0.0);
    EXPECT_NEAR(b.kl, kl_divergence(ref.data(), test.data(), vocab), 1e-12);
  }
  ReferenceDistribution small;
  reference_distribution(ref.data(), 10, small);
  EXPECT_THROW(compare_next_token(ref.data(), small, test.data(), vocab, 0), Error);  // another vocab
  EXPECT_THROW(compare_next_token(ref.data(), rd, test.data(), vocab, vocab), Error);
}

TEST(EvalPasskey, FoundOnlyWhenTheFirstNumberIsTheKey) {
  EXPECT_TRUE(passkey_found(" 12345. Remember", "12345"));
  EXPECT_TRUE(passkey_found("is 12345", "12345"));
  EXPECT_FALSE(passkey_found(" 1234 5", "12345"));
  EXPECT_FALSE(passkey_found(" 123456", "12345"));
  EXPECT_FALSE(passkey_found(" 54321 12345", "12345"));
  EXPECT_FALSE(passkey_found("", "12345"));
}

TEST(EvalPasskey, MarginIsTheTokensLeadOverTheBestOtherLogit) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 2.25f};
  EXPECT_DOUBLE_EQ(first_token_margin(logits.data(), 4, 1), 0.75);   // greedy picks it
  EXPECT_DOUBLE_EQ(first_token_margin(logits.data(), 4, 3), -0.75);  // 1 beats it
  EXPECT_DOUBLE_EQ(first_token_margin(logits.data(), 4, 2), -4.0);
  EXPECT_THROW(first_token_margin(logits.data(), 4, 4), Error);
  EXPECT_THROW(first_token_margin(logits.data(), 4, -1), Error);
  EXPECT_THROW(first_token_margin(logits.data(), 1, 0), Error);
}

TEST(EvalPasskey, PromptHasTheExactLengthAndHidesTheKeyAtTheDepth) {
  // One token per character keeps the arithmetic visible.
  const EncodeFn chars = [](const std::string& s) { return std::vector<int32_t>(s.begin(), s.end()); };
  for (double depth : {0.0, 0.5, 1.0}) {
    const PasskeyPrompt p = make_passkey_prompt(chars, 1, 2000, depth, 42);
    ASSERT_EQ(p.tokens.size(), 2000u);
    EXPECT_EQ(p.tokens[0], 1);
    EXPECT_EQ(p.key.size(), 5u);
    EXPECT_EQ(p.answer_first, ' ');  // the first token of " <key>"
    const std::string text(p.tokens.begin() + 1, p.tokens.end());
    const size_t at = text.find("The pass key is " + p.key);
    ASSERT_NE(at, std::string::npos);
    // text[i] is token i+1 and the needle starts with the space before "The".
    EXPECT_EQ(static_cast<int>(at), p.needle_pos);
    EXPECT_NEAR(static_cast<double>(p.needle_pos) / 2000.0, 0.07 + depth * 0.88, 0.05);
    EXPECT_EQ(text.substr(text.size() - 15), "The pass key is");
  }
  EXPECT_NE(make_passkey_prompt(chars, -1, 500, 0.5, 1).key, make_passkey_prompt(chars, -1, 500, 0.5, 2).key);
  EXPECT_THROW(make_passkey_prompt(chars, 1, 50, 0.5, 1), Error);
  EXPECT_THROW(make_passkey_prompt(chars, 1, 2000, 1.5, 1), Error);
  // A tokenizer that drops the key's digits leaves no answer token to score the margin by.
  const EncodeFn no_digits = [](const std::string& s) {
    std::vector<int32_t> t;
    for (char c : s)
      if (!std::isdigit(static_cast<unsigned char>(c)) && c != ' ') t.push_back(c);
    return t;
  };
  try {
    make_passkey_prompt(no_digits, 1, 2000, 0.5, 1);
    ADD_FAILURE() << "a key that encodes to no tokens was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("encoded to no tokens"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tq
