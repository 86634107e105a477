// The model's side of the calibrated presets: one f16-cache forward pass over a text
// collects pre-RoPE query/key and value moments per layer and KV head; the RoPE angles
// and the output projection's Gram matrices come from the model itself.
#include <cmath>
#include <string>
#include <utility>

#include "model_weights.h"
#include "turboquant/error.h"
#include "turboquant/model.h"

namespace tq {
namespace {

struct ProfileObserver : ForwardObserver {
  KvProfileBuilder* builder;
  size_t q_row, kv_row;
  // The first token (BOS, an attention sink with outlying activations) is left out: one
  // such row would dominate the moments of every ordinary token.
  void on_pre_rope(int layer, int pos0, int n, const float* q, const float* k, const float* v) override {
    const int skip = pos0 == 0 ? 1 : 0;
    if (n - skip <= 0) return;
    builder->add(layer, n - skip, q + skip * q_row, k + skip * kv_row, v + skip * kv_row);
  }
  void on_qkv(int, int, int, const float*, const float*, const float*) override {}
};

}  // namespace

KvProfile Model::measure_kv_profile(const std::vector<int32_t>& tokens) {
  return measure_kv_profile(std::vector<std::vector<int32_t>>{tokens});
}

KvProfile Model::measure_kv_profile(const std::vector<std::vector<int32_t>>& texts) {
  const ModelConfig& c = config_;
  for (const auto& tokens : texts)
    if (tokens.size() < 16) throw Error("KV calibration needs at least 16 tokens, got " + std::to_string(tokens.size()));
  KvProfileBuilder builder(c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim);
  ProfileObserver obs;
  obs.builder = &builder;
  obs.q_row = static_cast<size_t>(c.n_heads) * c.head_dim;
  obs.kv_row = static_cast<size_t>(c.n_kv_heads) * c.head_dim;
  for (const auto& tokens : texts) calibration_pass(tokens, obs);
  KvProfile p = builder.finish();

  // RoPE as forward() applies it: pair i turns by freq_scale · base^(−2i/rope_dim) / factor_i
  // per position; sliding layers use their own base and no scaling.
  const int d = c.head_dim, half = c.rope_dim / 2;
  p.rope_partner = rope_partners(d, c.rope_dim, c.rope_neox);
  const ModelWeights& W = *weights_;
  for (int l = 0; l < c.n_layers; ++l) {
    const bool local = c.layer_sliding[l];
    const double base = local ? c.rope_base_local : c.rope_base;
    const double scale = local ? 1.0 : c.rope_freq_scale;
    std::vector<double> theta(d, 0.0);
    for (int i = 0; i < half; ++i) {
      double t = scale * std::pow(base, -2.0 * i / c.rope_dim);
      if (!local && !W.rope_freqs.empty()) t /= W.rope_freqs[i];
      const int a = c.rope_neox ? i : 2 * i, b = c.rope_neox ? i + half : 2 * i + 1;
      theta[a] = theta[b] = t;
    }
    p.rope_theta.push_back(std::move(theta));
  }

  // Value metric: the output error of a value error e is Σ_h ‖W_o,h e‖² over the query
  // heads h reading this KV head (W_o is [dim][n_heads · d], head h in columns h·d ...).
  const int group = c.n_heads / c.n_kv_heads;
  std::vector<float> row;
  for (int l = 0; l < c.n_layers; ++l) {
    const model::QMatrix& wo = W.layers[l].wo;  // whatever its type: one row at a time in f32
    row.resize(wo.cols);
    for (int o = 0; o < wo.rows; ++o) {
      model::qmatrix_row(wo, o, row.data());
      for (int g = 0; g < c.n_kv_heads; ++g) {
        std::vector<double>& m = p.heads[static_cast<size_t>(l) * c.n_kv_heads + g].v_weight;
        for (int h = g * group; h < (g + 1) * group; ++h) {
          const float* r = row.data() + static_cast<size_t>(h) * d;
          for (int i = 0; i < d; ++i)
            for (int j = i; j < d; ++j) m[static_cast<size_t>(i) * d + j] += double(r[i]) * r[j];
        }
      }
    }
    for (int g = 0; g < c.n_kv_heads; ++g) {  // mirror the upper triangle
      std::vector<double>& m = p.heads[static_cast<size_t>(l) * c.n_kv_heads + g].v_weight;
      for (int i = 0; i < d; ++i)
        for (int j = 0; j < i; ++j) m[static_cast<size_t>(i) * d + j] = m[static_cast<size_t>(j) * d + i];
    }
  }
  p.model_name = c.name;
  p.check();
  return p;
}

}  // namespace tq
