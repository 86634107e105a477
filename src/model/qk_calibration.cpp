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

const char* calibration_text() {
  return "The ferry left the harbour a little after seven, when the fog had begun to lift from the water. "
         "Most of the passengers stayed inside, but an old man in a grey coat stood at the rail and watched "
         "the town grow small behind them. He had made the crossing every spring for forty years.\n\n"
         "\"Are you going to the island for the festival?\" asked a girl who had come to stand beside him.\n"
         "\"No,\" he said, smiling. \"I am going to see whether my brother has finally fixed his roof.\"\n\n"
         "To install the package, download the archive, unpack it into a new directory and run the setup "
         "script. The script checks that version 3.2 or later of the compiler is present, builds the library "
         "in release mode and runs the test suite, which takes about two minutes on a laptop. If a test fails, "
         "the log file lists the name of the test, the expected value and the value that was measured.\n\n"
         "In 1887 the city counted 412,000 inhabitants; by 1913 the number had nearly doubled, and the new "
         "railway station handled more than 90 trains a day. Prices rose as well: a loaf of bread that cost "
         "four cents at the start of the period cost eleven at its end.\n\n"
         "Water boils at a lower temperature on a mountain because the air pressure is lower there. A cook "
         "who follows a recipe written at sea level may find that beans need much longer to soften, and that "
         "cakes rise too quickly and then fall. Small changes to the amount of sugar and baking powder help.\n\n"
         "Dear Margaret, thank you for your letter and for the photographs of the garden. The roses look "
         "wonderful this year. We are all well here, although the children have had colds, and James is "
         "busy with the harvest. Write again soon and tell me when you plan to visit.";
}

}  // namespace tq
