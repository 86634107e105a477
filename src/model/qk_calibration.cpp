// The model's side of the Q/K balance: setting it, and calibrating it with one f16-cache
// forward pass over a text.
#include <string>
#include <utility>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/model.h"

namespace tq {
namespace {

struct BalanceObserver : ForwardObserver {
  QkBalanceStats* stats;
  BalanceObserver(QkBalanceStats* s, const ModelConfig& c)
      : stats(s), n_heads(c.n_heads), n_kv_heads(c.n_kv_heads), head_dim(c.head_dim) {}
  int n_heads, n_kv_heads, head_dim;
  // The first token (BOS, an attention sink with outlying activations) is left out.
  void on_qkv(int layer, int pos0, int n, const float* q, const float* k, const float*) override {
    const int skip = pos0 == 0 ? 1 : 0;
    stats->add(layer, n - skip, q + static_cast<size_t>(skip) * n_heads * head_dim,
               k + static_cast<size_t>(skip) * n_kv_heads * head_dim);
  }
};

}  // namespace

void Model::set_qk_balance(QkBalance balance) {
  const ModelConfig& c = config_;
  if (!balance.empty() &&
      (balance.n_layers() != c.n_layers || balance.n_kv_heads() != c.n_kv_heads || balance.head_dim() != c.head_dim)) {
    throw Error("Q/K balance for " + std::to_string(balance.n_layers()) + " layers x " +
                std::to_string(balance.n_kv_heads()) + " KV heads x " + std::to_string(balance.head_dim()) +
                " does not fit this model (" + std::to_string(c.n_layers) + " x " + std::to_string(c.n_kv_heads) +
                " x " + std::to_string(c.head_dim) + ")");
  }
  balance_ = std::move(balance);
}

QkBalance Model::calibrate_qk_balance(const std::vector<int32_t>& tokens) {
  const ModelConfig& c = config_;
  if (tokens.size() < 2) throw Error("Q/K balance calibration needs at least 2 tokens");
  QkBalanceStats stats(c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim,
                       rope_partners(c.head_dim, c.rope_dim, c.rope_neox));
  BalanceObserver obs(&stats, c);
  calibration_pass(tokens, obs);
  return stats.finish();
}

void Model::calibration_pass(const std::vector<int32_t>& tokens, ForwardObserver& obs) {
  const QkBalancePause pause(*this);
  const int n = static_cast<int>(tokens.size());
  KvCache cache(cache_config("f16", "f16", n));
  const int seq = cache.add_sequence();
  std::vector<float> logits(static_cast<size_t>(config_.vocab));
  forward(tokens.data(), n, cache, seq, logits.data(), false, &obs);
}

int Model::enable_qk_balance() {
  const std::vector<int32_t> tokens = tokenizer().encode(calibration_text(), tokenizer().add_bos_default());
  set_qk_balance(calibrate_qk_balance(tokens));
  return static_cast<int>(tokens.size());
}

}  // namespace tq
