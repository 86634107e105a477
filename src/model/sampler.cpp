#include "turboquant/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "turboquant/error.h"

namespace tq {

int32_t argmax(const float* logits, int vocab) {
  if (vocab <= 0) throw Error("argmax over an empty vocabulary");
  return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
}

int32_t sample_token(const float* logits, int vocab, const SamplerParams& p, Rng& rng) {
  if (vocab <= 0) throw Error("sampling over an empty vocabulary");
  if (!(p.temperature >= 0.0f)) throw Error("sampling temperature must be >= 0, got " + std::to_string(p.temperature));
  for (int i = 0; i < vocab; ++i) {
    if (!std::isfinite(logits[i])) throw Error("logit of token " + std::to_string(i) + " is not finite");
  }
  if (p.temperature == 0.0f) return argmax(logits, vocab);
  const int k = p.top_k > 0 ? std::min(p.top_k, vocab) : vocab;
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  std::vector<double> w(k);
  const double top = logits[ids[0]];
  double z = 0;
  for (int i = 0; i < k; ++i) z += (w[i] = std::exp((logits[ids[i]] - top) / p.temperature));
  double u = rng.uniform() * z;
  for (int i = 0; i < k; ++i) {
    if ((u -= w[i]) < 0) return ids[i];
  }
  return ids[k - 1];
}

}  // namespace tq
