#include "turboquant/qk_balance.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "turboquant/error.h"

namespace tq {

std::vector<int> rope_partners(int head_dim, int rope_dim, bool neox) {
  if (head_dim <= 0 || rope_dim < 0 || rope_dim > head_dim || rope_dim % 2 != 0) {
    throw Error("rope_partners: need 0 <= rope_dim <= head_dim with rope_dim even, got head_dim " +
                std::to_string(head_dim) + ", rope_dim " + std::to_string(rope_dim));
  }
  std::vector<int> p(head_dim);
  for (int i = 0; i < head_dim; ++i) p[i] = i;
  const int half = rope_dim / 2;
  for (int j = 0; j < half; ++j) {
    const int a = neox ? j : 2 * j, b = neox ? j + half : 2 * j + 1;
    p[a] = b;
    p[b] = a;
  }
  return p;
}

QkBalance::QkBalance(int n_layers, int n_kv_heads, int head_dim, std::vector<float> scale)
    : n_layers_(n_layers), n_kv_heads_(n_kv_heads), head_dim_(head_dim), scale_(std::move(scale)) {
  if (n_layers <= 0 || n_kv_heads <= 0 || head_dim <= 0) throw Error("QkBalance: dimensions must be positive");
  // Compared by division: the product of three ints can wrap around size_t.
  const size_t per_dim = static_cast<size_t>(n_layers) * static_cast<size_t>(n_kv_heads);
  if (scale_.size() % per_dim != 0 || scale_.size() / per_dim != static_cast<size_t>(head_dim)) {
    throw Error("QkBalance: " + std::to_string(scale_.size()) + " scales for " + std::to_string(n_layers) +
                " layers x " + std::to_string(n_kv_heads) + " KV heads x " + std::to_string(head_dim));
  }
  for (float s : scale_) {
    if (!std::isfinite(s) || s <= 0.0f) throw Error("QkBalance: every scale must be finite and positive");
  }
}

const float* QkBalance::scale(int layer, int kv_head) const {
  if (layer < 0 || layer >= n_layers_ || kv_head < 0 || kv_head >= n_kv_heads_) {
    throw Error("QkBalance: layer " + std::to_string(layer) + ", KV head " + std::to_string(kv_head) +
                " out of range");
  }
  return scale_.data() + (static_cast<size_t>(layer) * n_kv_heads_ + kv_head) * head_dim_;
}

void QkBalance::apply(int layer, int n, int n_heads, float* q, float* k) const {
  if (empty()) return;
  if (n_heads <= 0 || n_heads % n_kv_heads_ != 0) {
    throw Error("QkBalance: " + std::to_string(n_heads) + " query heads do not group over " +
                std::to_string(n_kv_heads_) + " KV heads");
  }
  const int group = n_heads / n_kv_heads_, D = head_dim_;
  for (int t = 0; t < n; ++t) {
    for (int kh = 0; kh < n_kv_heads_; ++kh) {
      const float* s = scale(layer, kh);
      float* kv = k + (static_cast<size_t>(t) * n_kv_heads_ + kh) * D;
      for (int i = 0; i < D; ++i) kv[i] *= s[i];
      for (int g = 0; g < group; ++g) {
        float* qv = q + (static_cast<size_t>(t) * n_heads + kh * group + g) * D;
        for (int i = 0; i < D; ++i) qv[i] /= s[i];
      }
    }
  }
}

QkBalanceStats::QkBalanceStats(int n_layers, int n_heads, int n_kv_heads, int head_dim, std::vector<int> partners)
    : n_layers_(n_layers), n_heads_(n_heads), n_kv_heads_(n_kv_heads), head_dim_(head_dim),
      partners_(std::move(partners)) {
  if (n_layers <= 0 || n_kv_heads <= 0 || head_dim <= 0 || n_heads % n_kv_heads != 0 || n_heads <= 0) {
    throw Error("QkBalanceStats: bad dimensions");
  }
  if (partners_.size() != static_cast<size_t>(head_dim)) throw Error("QkBalanceStats: one partner per coordinate");
  const size_t cells = static_cast<size_t>(n_layers) * n_kv_heads * head_dim;
  q2_.assign(cells, 0.0);
  k2_.assign(cells, 0.0);
  tokens_.assign(n_layers, 0);
}

void QkBalanceStats::add(int layer, int n, const float* q, const float* k) {
  if (layer < 0 || layer >= n_layers_) throw Error("QkBalanceStats: layer out of range");
  const int group = n_heads_ / n_kv_heads_, D = head_dim_;
  for (int t = 0; t < n; ++t) {
    for (int kh = 0; kh < n_kv_heads_; ++kh) {
      double* q2 = q2_.data() + (static_cast<size_t>(layer) * n_kv_heads_ + kh) * D;
      double* k2 = k2_.data() + (static_cast<size_t>(layer) * n_kv_heads_ + kh) * D;
      const float* kv = k + (static_cast<size_t>(t) * n_kv_heads_ + kh) * D;
      for (int i = 0; i < D; ++i) k2[i] += static_cast<double>(kv[i]) * kv[i];
      for (int g = 0; g < group; ++g) {
        const float* qv = q + (static_cast<size_t>(t) * n_heads_ + kh * group + g) * D;
        for (int i = 0; i < D; ++i) q2[i] += static_cast<double>(qv[i]) * qv[i] / group;
      }
    }
  }
  tokens_[layer] += n;
}

QkBalance QkBalanceStats::finish() const {
  for (int l = 0; l < n_layers_; ++l) {
    if (tokens_[l] == 0) throw Error("QkBalanceStats: layer " + std::to_string(l) + " saw no tokens");
  }
  const int D = head_dim_;
  std::vector<float> scale(q2_.size());
  for (size_t head = 0; head < q2_.size() / D; ++head) {
    const double* q2 = q2_.data() + head * D;
    const double* k2 = k2_.data() + head * D;
    std::vector<double> log_s(D);
    double mean = 0.0;
    for (int i = 0; i < D; ++i) {
      // Pair sums are invariant under the RoPE rotation; the tiny floor keeps dead channels finite.
      const int j = partners_[i];
      const double a = q2[i] + (j != i ? q2[j] : 0.0) + 1e-30, b = k2[i] + (j != i ? k2[j] : 0.0) + 1e-30;
      log_s[i] = 0.25 * std::log(a / b);
      mean += log_s[i] / D;
    }
    const double lim = std::log(static_cast<double>(kMaxScale));
    for (int i = 0; i < D; ++i) {
      scale[head * D + i] = static_cast<float>(std::exp(std::clamp(log_s[i] - mean, -lim, lim)));
    }
  }
  return QkBalance(n_layers_, n_kv_heads_, head_dim_, std::move(scale));
}

}  // namespace tq
