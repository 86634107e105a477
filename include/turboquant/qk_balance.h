#pragma once
// Exact query/key channel balancing in front of a compressed key cache.
//
// Attention only needs q·k, so keys may be stored as s ⊙ k if queries are multiplied by
// 1/s: the product is unchanged, but the key quantizer's error (spread evenly over the
// channels by the codec's rotation) now weighs against queries that are small where
// keys were large. With per-channel second moments a_i = E[q_i²], b_i = E[k_i²], the
// choice s_i = (a_i / b_i)^(1/4) minimizes the expected score error of an isotropic key
// error among diagonal scalings. Scales are tied within each RoPE pair, so they commute
// with the rotary embedding (the same balance holds at every position) and second
// moments of a pair are rotation-invariant: calibration on any short text carries over.
#include <cstdint>
#include <vector>

namespace tq {

// partner[i] = the coordinate RoPE rotates together with i (i itself when unrotated).
std::vector<int> rope_partners(int head_dim, int rope_dim, bool neox);

class QkBalance {
 public:
  QkBalance() = default;  // empty: identity
  // scale: [n_layers][n_kv_heads][head_dim], every value finite and > 0 (tq::Error otherwise).
  QkBalance(int n_layers, int n_kv_heads, int head_dim, std::vector<float> scale);

  bool empty() const { return scale_.empty(); }
  int n_layers() const { return n_layers_; }
  int n_kv_heads() const { return n_kv_heads_; }
  int head_dim() const { return head_dim_; }
  const float* scale(int layer, int kv_head) const;

  // In place, for one layer: k [n][n_kv_heads][head_dim] *= s and q [n][n_heads][head_dim]
  // /= s, query head h using KV head h / (n_heads / n_kv_heads). No-op when empty.
  void apply(int layer, int n, int n_heads, float* q, float* k) const;

 private:
  int n_layers_ = 0, n_kv_heads_ = 0, head_dim_ = 0;
  std::vector<float> scale_;
};

// Accumulates per-pair second moments of q (over the query heads sharing a KV head) and k.
class QkBalanceStats {
 public:
  QkBalanceStats(int n_layers, int n_heads, int n_kv_heads, int head_dim, std::vector<int> partners);
  // q [n][n_heads][head_dim], k [n][n_kv_heads][head_dim] of one layer.
  void add(int layer, int n, const float* q, const float* k);
  // s = (a/b)^(1/4) per RoPE pair, scaled to geometric mean 1 per head and clamped to
  // [1/kMaxScale, kMaxScale]. tq::Error when some layer saw no tokens.
  QkBalance finish() const;

  static constexpr float kMaxScale = 16.0f;

 private:
  int n_layers_, n_heads_, n_kv_heads_, head_dim_;
  std::vector<int> partners_;
  std::vector<double> q2_, k2_;   // [layer][kv_head][head_dim]
  std::vector<int64_t> tokens_;   // per layer
};

}  // namespace tq
