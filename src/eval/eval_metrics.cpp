#include "turboquant/eval_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "turboquant/error.h"

namespace tq {

namespace {

// log Σ exp(x_i), shifted by the maximum so no exponent overflows.
double log_sum_exp(const float* x, int n, double* max_out = nullptr) {
  double m = x[0];
  for (int i = 1; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i]) - m);
  if (max_out) *max_out = m;
  return m + std::log(s);
}

void check_n(int n, const char* what) {
  if (n <= 0) throw Error(std::string(what) + ": empty logits");
}

}  // namespace

void log_softmax(const float* logits, int n, std::vector<double>& out) {
  check_n(n, "log_softmax");
  const double lse = log_sum_exp(logits, n);
  out.resize(n);
  for (int i = 0; i < n; ++i) out[i] = logits[i] - lse;
}

double negative_log_likelihood(const float* logits, int n, int target) {
  check_n(n, "negative_log_likelihood");
  if (target < 0 || target >= n)
    throw Error("negative_log_likelihood: target " + std::to_string(target) + " outside vocab of " +
                std::to_string(n));
  return log_sum_exp(logits, n) - logits[target];
}

double kl_divergence(const float* ref, const float* test, int n) {
  check_n(n, "kl_divergence");
  const double lse_r = log_sum_exp(ref, n);
  const double lse_t = log_sum_exp(test, n);
  double kl = 0;
  for (int i = 0; i < n; ++i) {
    const double lr = ref[i] - lse_r;
    kl += std::exp(lr) * (lr - (test[i] - lse_t));
  }
  return std::max(kl, 0.0);  // rounding can leave −1e-17 for identical inputs
}

std::vector<int> top_k(const float* x, int n, int k) {
  check_n(n, "top_k");
  k = std::clamp(k, 0, n);
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return x[a] > x[b] || (x[a] == x[b] && a < b);
  });
  idx.resize(k);
  return idx;
}

double cosine(const float* a, const float* b, int n) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0 && bb == 0) return 1.0;
  if (aa == 0 || bb == 0) return 0.0;
  return ab / std::sqrt(aa * bb);
}

double perplexity(double sum_nll, size_t count) {
  if (count == 0) throw Error("perplexity: no predicted tokens");
  return std::exp(sum_nll / static_cast<double>(count));
}

void reference_distribution(const float* ref, int vocab, ReferenceDistribution& out) {
  check_n(vocab, "reference_distribution");
  out.lse = log_sum_exp(ref, vocab);
  out.argmax = 0;
  out.probs.resize(vocab);
  for (int i = 0; i < vocab; ++i) {
    out.probs[i] = std::exp(ref[i] - out.lse);
    if (ref[i] > ref[out.argmax]) out.argmax = i;
  }
}

NextTokenComparison compare_next_token(const float* ref, const ReferenceDistribution& rd, const float* test,
                                       int vocab, int target) {
  check_n(vocab, "compare_next_token");
  if (target < 0 || target >= vocab)
    throw Error("compare_next_token: target " + std::to_string(target) + " outside vocab of " +
                std::to_string(vocab));
  if (rd.probs.size() != static_cast<size_t>(vocab)) throw Error("compare_next_token: reference of another vocab");
  // One pass for the normalizer, one for KL: this runs per token per codec.
  const double lse_t = log_sum_exp(test, vocab);
  NextTokenComparison c;
  c.nll_ref = rd.lse - ref[target];
  c.nll_test = lse_t - test[target];
  double kl = 0;
  int best_t = 0;
  for (int i = 0; i < vocab; ++i) {
    kl += rd.probs[i] * ((ref[i] - rd.lse) - (test[i] - lse_t));
    if (test[i] > test[best_t]) best_t = i;
  }
  c.kl = std::max(kl, 0.0);
  c.top1_agree = rd.argmax == best_t;
  return c;
}

NextTokenComparison compare_next_token(const float* ref, const float* test, int vocab, int target) {
  ReferenceDistribution rd;
  reference_distribution(ref, vocab, rd);
  return compare_next_token(ref, rd, test, vocab, target);
}

}  // namespace tq
