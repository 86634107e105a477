#pragma once
// Quality metrics of the real-model evaluation (`tq eval`): next-token distributions
// compared between a reference cache (f16) and a compressed one, and vector cosines.
// Everything accumulates in double: KL values of 1e-4 are differences of numbers near
// ten, and float sums over a 262,144-token vocabulary would drown them.
#include <cstddef>
#include <vector>

namespace tq {

// log softmax(logits)[i] for every i; out has n entries.
void log_softmax(const float* logits, int n, std::vector<double>& out);

// −log softmax(logits)[target].
double negative_log_likelihood(const float* logits, int n, int target);

// KL(P_ref ‖ P_test) = Σ p_ref (log p_ref − log p_test), P = softmax(logits).
double kl_divergence(const float* ref_logits, const float* test_logits, int n);

// Indices of the k largest values, largest first (ties: lower index first); top_k(x, n, 1)[0]
// is the argmax.
std::vector<int> top_k(const float* x, int n, int k);

// <a,b> / (‖a‖‖b‖); 1 when both are zero, 0 when exactly one is.
double cosine(const float* a, const float* b, int n);

// exp(mean NLL); throws tq::Error when count is 0.
double perplexity(double sum_nll, size_t count);

// One predicted position compared between the reference and the tested cache.
struct NextTokenComparison {
  double nll_ref = 0;
  double nll_test = 0;
  double kl = 0;           // KL(ref ‖ test)
  bool top1_agree = false; // same argmax
};
NextTokenComparison compare_next_token(const float* ref_logits, const float* test_logits,
                                       int vocab, int target);

// The reference side of compare_next_token, computed once per position and shared by
// every cache compared with it: log Σ exp, argmax and the probabilities.
struct ReferenceDistribution {
  double lse = 0;
  int argmax = 0;
  std::vector<double> probs;  // softmax(ref_logits)
};
void reference_distribution(const float* ref_logits, int vocab, ReferenceDistribution& out);
// Equal to compare_next_token(ref_logits, test_logits, vocab, target), bit for bit, when
// `ref` is reference_distribution(ref_logits, vocab).
NextTokenComparison compare_next_token(const float* ref_logits, const ReferenceDistribution& ref,
                                       const float* test_logits, int vocab, int target);

}  // namespace tq
