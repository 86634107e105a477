#pragma once
// Tiny randomly initialized models of each supported family, written to GGUF with
// GgufWriter, and an independent naive forward pass (plain loops, f32 K/V, no cache) to
// check tq::Model against. The reference is written from the architecture description,
// not from src/model: it shares no code with it.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <utility>
#include <map>
#include <string>
#include <vector>

#include "turboquant/gguf.h"
#include "turboquant/rng.h"
#include "tiny_tokenizers.h"

namespace tq::test {

struct TinySpec {
  std::string arch = "llama";  // llama | qwen2 | gemma3
  int n_layers = 2;
  int dim = 128;
  int n_heads = 4;
  int n_kv_heads = 2;
  int head_dim = 64;
  int ffn_dim = 192;
  bool biases = false;       // q/k/v biases (Qwen2)
  float k_bias_scale = 0.5f; // spread of the key bias: large makes keys' norms dwarf values' (Qwen2.5-like)
  bool tied = false;         // no output.weight
  int sliding_window = 0;    // gemma3
  int swa_pattern = 0;       // gemma3: every swa_pattern-th layer global
  float final_softcap = 0.f;
  float rope_base = 10000.f;
  float rope_base_local = 10000.f;
  float rope_scale_factor = 0.f;  // linear scaling factor; 0 = none
  bool rope_freqs = false;        // Llama 3 per-frequency divisors (rope_freqs.weight)
  float norm_eps = 1e-6f;
  uint64_t seed = 1;
  std::string name;          // general.name; "" = "tiny-<arch>"
  int context_length = 1024;
  int embedding_rows = 0;    // rows of token_embd (the vocabulary); 0 = the tiny tokenizer's,
                             // more for a real model's shapes (its ids are a prefix)
  // Damage for error tests: a tensor left out, one holding a NaN, one with its two
  // axes swapped.
  std::string omit, poison, swap_axes;
  // Type of the 2-D weights in the file (F32, or a type gguf::quantize writes); the
  // reference then uses the dequantized values, so it is the stored model exactly.
  gguf::GgmlType matrix_type = gguf::GgmlType::F32;
  // A tensor written as all-zero Q2_K blocks, a type the runner's kernels lack (its rows
  // must be a multiple of 256 elements).
  std::string as_q2_k;

  static TinySpec llama() {
    TinySpec s;
    s.rope_freqs = true;
    return s;
  }
  static TinySpec qwen2() {
    TinySpec s;
    s.arch = "qwen2";
    s.biases = true;
    s.tied = true;
    s.rope_base = 1000000.f;
    return s;
  }
  static TinySpec gemma3() {
    TinySpec s;
    s.arch = "gemma3";
    s.n_layers = 3;
    s.n_heads = 2;
    s.n_kv_heads = 1;
    s.tied = true;
    s.sliding_window = 5;
    s.swa_pattern = 2;  // layers 0 and 2 slide, layer 1 is global
    s.final_softcap = 30.f;
    s.rope_base = 1000000.f;
    s.rope_scale_factor = 2.f;
    return s;
  }
};

struct TinyModel {
  TinySpec spec;
  int vocab = 0;
  std::map<std::string, std::vector<float>> w;  // tensor name -> f32 values (GGUF layout)
  gguf::GgufWriter writer;

  const std::vector<float>& t(const std::string& name) const { return w.at(name); }
  bool has(const std::string& name) const { return w.count(name) > 0; }
};

// n token ids drawn uniformly from [0, vocab) (prompts for the tiny models).
inline std::vector<int32_t> random_tokens(int n, int vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng.below(vocab));
  return t;
}

inline TinyModel make_tiny_model(const TinySpec& s) {
  TinyModel m;
  m.spec = s;
  m.vocab = s.embedding_rows > 0 ? s.embedding_rows : static_cast<int>(tiny_vocab().size());
  Rng rng(s.seed);
  auto& g = m.writer;
  const std::string a = s.arch + ".";
  g.add_string("general.architecture", s.arch);
  g.add_string("general.name", s.name.empty() ? "tiny-" + s.arch : s.name);
  g.add_uint32(a + "block_count", s.n_layers);
  g.add_uint32(a + "context_length", s.context_length);
  g.add_uint32(a + "embedding_length", s.dim);
  g.add_uint32(a + "feed_forward_length", s.ffn_dim);
  g.add_uint32(a + "attention.head_count", s.n_heads);
  g.add_uint32(a + "attention.head_count_kv", s.n_kv_heads);
  g.add_uint32(a + "attention.key_length", s.head_dim);
  g.add_uint32(a + "attention.value_length", s.head_dim);
  g.add_float(a + "rope.freq_base", s.rope_base);
  g.add_float(a + "attention.layer_norm_rms_epsilon", s.norm_eps);
  if (s.rope_scale_factor > 0) {
    g.add_string(a + "rope.scaling.type", "linear");
    g.add_float(a + "rope.scaling.factor", s.rope_scale_factor);
  }
  if (s.sliding_window > 0) {
    g.add_uint32(a + "attention.sliding_window", s.sliding_window);
    g.add_uint32(a + "attention.sliding_window_pattern", s.swa_pattern);
  }
  if (s.arch == "gemma3") g.add_float(a + "rope.freq_base_swa", s.rope_base_local);
  if (s.final_softcap > 0) g.add_float(a + "final_logit_softcapping", s.final_softcap);

  add_tiny_spm_tokenizer(g);

  // Weights ~ N(0, 1/in) keep activations O(1); norm weights near 1.
  auto add = [&](const std::string& name, std::vector<uint64_t> shape, float stddev, float mean = 0.f) {
    size_t n = 1;
    for (uint64_t d : shape) n *= d;
    std::vector<float> v(n);
    for (float& x : v) x = mean + stddev * static_cast<float>(rng.gaussian());
    if (name == s.omit) return;
    std::vector<float> stored = v;
    if (name == s.poison) stored[n / 2] = std::numeric_limits<float>::quiet_NaN();
    std::vector<uint64_t> stored_shape = shape;
    if (name == s.swap_axes && shape.size() == 2) std::swap(stored_shape[0], stored_shape[1]);
    if (name == s.as_q2_k) {
      g.add_tensor(name, stored_shape, gguf::GgmlType::Q2_K, std::vector<uint8_t>(n / 256 * 84, 0));
    } else if (shape.size() == 2 && s.matrix_type != gguf::GgmlType::F32 && stored_shape == shape) {
      std::vector<uint8_t> bytes = gguf::quantize(s.matrix_type, v.data(), n);
      gguf::TensorInfo info;
      info.type = s.matrix_type;
      info.data = bytes.data();
      info.shape = shape;
      v = gguf::dequantize_tensor(info);
      // Poisoned: the fp16 scale of the first block (offset 0 in Q4_0/Q4_1/Q8_0) is a NaN.
      if (name == s.poison) bytes[0] = 0x00, bytes[1] = 0x7e;
      g.add_tensor(name, stored_shape, s.matrix_type, std::move(bytes));
    } else {
      g.add_tensor_f32(name, stored_shape, stored);
    }
    m.w[name] = std::move(v);
  };
  const uint64_t dim = s.dim, ffn = s.ffn_dim, nv = m.vocab;
  const uint64_t q_dim = uint64_t(s.n_heads) * s.head_dim, kv_dim = uint64_t(s.n_kv_heads) * s.head_dim;
  const float in_dim = 1.f / std::sqrt(float(s.dim));
  add("token_embd.weight", {dim, nv}, s.arch == "gemma3" ? in_dim : 1.f);
  add("output_norm.weight", {dim}, 0.1f, 1.f);
  if (!s.tied) add("output.weight", {dim, nv}, in_dim);
  if (s.rope_freqs) add("rope_freqs.weight", {uint64_t(s.head_dim / 2)}, 0.5f, 2.f);
  for (int il = 0; il < s.n_layers; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    add(p + "attn_norm.weight", {dim}, 0.1f, 1.f);
    add(p + "attn_q.weight", {dim, q_dim}, in_dim);
    add(p + "attn_k.weight", {dim, kv_dim}, in_dim);
    add(p + "attn_v.weight", {dim, kv_dim}, in_dim);
    add(p + "attn_output.weight", {q_dim, dim}, 1.f / std::sqrt(float(q_dim)));
    if (s.biases) {
      add(p + "attn_q.bias", {q_dim}, 0.5f);
      add(p + "attn_k.bias", {kv_dim}, s.k_bias_scale);
      add(p + "attn_v.bias", {kv_dim}, 0.5f);
    }
    add(p + "ffn_norm.weight", {dim}, 0.1f, 1.f);
    add(p + "ffn_gate.weight", {dim, ffn}, in_dim);
    add(p + "ffn_up.weight", {dim, ffn}, in_dim);
    add(p + "ffn_down.weight", {ffn, dim}, 1.f / std::sqrt(float(ffn)));
    if (s.arch == "gemma3") {
      add(p + "attn_q_norm.weight", {uint64_t(s.head_dim)}, 0.1f, 1.f);
      add(p + "attn_k_norm.weight", {uint64_t(s.head_dim)}, 0.1f, 1.f);
      add(p + "post_attention_norm.weight", {dim}, 0.1f, 1.f);
      add(p + "post_ffw_norm.weight", {dim}, 0.1f, 1.f);
    }
  }
  return m;
}

// ---- Naive reference forward: the whole sequence at once, f32 K/V, no cache. ----

namespace ref {

inline std::vector<float> matvec(const std::vector<float>& W, int in, int out, const std::vector<float>& x) {
  std::vector<float> y(out, 0.f);
  for (int o = 0; o < out; ++o) {
    double s = 0;
    for (int i = 0; i < in; ++i) s += double(W[size_t(o) * in + i]) * x[i];
    y[o] = float(s);
  }
  return y;
}

inline void rmsnorm(float* x, int n, const float* w, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const double inv = 1.0 / std::sqrt(ss / n + eps);
  for (int i = 0; i < n; ++i) x[i] = float(x[i] * inv * w[i]);
}

// Rotates one head in place: NEOX pairs (i, i+d/2) or interleaved pairs (2i, 2i+1).
inline void rope(float* v, int d, int pos, double base, double scale, bool neox, const float* divisors) {
  for (int i = 0; i < d / 2; ++i) {
    const double theta = pos * scale / std::pow(base, 2.0 * i / d) / (divisors ? divisors[i] : 1.0);
    const int a = neox ? i : 2 * i, b = neox ? i + d / 2 : 2 * i + 1;
    const double x0 = v[a], x1 = v[b];
    v[a] = float(x0 * std::cos(theta) - x1 * std::sin(theta));
    v[b] = float(x0 * std::sin(theta) + x1 * std::cos(theta));
  }
}

}  // namespace ref

// Logits [n][vocab] for every position of `tokens`.
inline std::vector<float> reference_logits(const TinyModel& m, const std::vector<int32_t>& tokens) {
  const TinySpec& s = m.spec;
  const bool gemma = s.arch == "gemma3";
  const int n = static_cast<int>(tokens.size());
  const int D = s.dim, H = s.n_heads, KV = s.n_kv_heads, hd = s.head_dim;
  std::vector<std::vector<float>> x(n);
  for (int t = 0; t < n; ++t) {
    const float* e = m.t("token_embd.weight").data() + size_t(tokens[t]) * D;
    x[t].assign(e, e + D);
    if (gemma) {
      for (float& v : x[t]) v *= std::sqrt(float(D));
    }
  }
  for (int il = 0; il < s.n_layers; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    const bool sliding = gemma && s.sliding_window > 0 && (il % s.swa_pattern) < s.swa_pattern - 1;
    const double base = sliding ? s.rope_base_local : s.rope_base;
    const double scale = (sliding || s.rope_scale_factor == 0.f) ? 1.0 : 1.0 / s.rope_scale_factor;
    const float* divisors = m.has("rope_freqs.weight") ? m.t("rope_freqs.weight").data() : nullptr;
    std::vector<std::vector<float>> q(n), k(n), v(n);
    for (int t = 0; t < n; ++t) {
      std::vector<float> h = x[t];
      ref::rmsnorm(h.data(), D, m.t(p + "attn_norm.weight").data(), s.norm_eps);
      q[t] = ref::matvec(m.t(p + "attn_q.weight"), D, H * hd, h);
      k[t] = ref::matvec(m.t(p + "attn_k.weight"), D, KV * hd, h);
      v[t] = ref::matvec(m.t(p + "attn_v.weight"), D, KV * hd, h);
      if (s.biases) {
        for (int i = 0; i < H * hd; ++i) q[t][i] += m.t(p + "attn_q.bias")[i];
        for (int i = 0; i < KV * hd; ++i) k[t][i] += m.t(p + "attn_k.bias")[i];
        for (int i = 0; i < KV * hd; ++i) v[t][i] += m.t(p + "attn_v.bias")[i];
      }
      for (int h_ = 0; h_ < H; ++h_) {
        if (gemma) ref::rmsnorm(&q[t][h_ * hd], hd, m.t(p + "attn_q_norm.weight").data(), s.norm_eps);
        ref::rope(&q[t][h_ * hd], hd, t, base, scale, s.arch != "llama", divisors);
      }
      for (int h_ = 0; h_ < KV; ++h_) {
        if (gemma) ref::rmsnorm(&k[t][h_ * hd], hd, m.t(p + "attn_k_norm.weight").data(), s.norm_eps);
        ref::rope(&k[t][h_ * hd], hd, t, base, scale, s.arch != "llama", divisors);
      }
    }
    for (int t = 0; t < n; ++t) {
      std::vector<float> att(H * hd, 0.f);
      for (int h_ = 0; h_ < H; ++h_) {
        const int kh = h_ / (H / KV);
        const int first = sliding ? std::max(0, t - s.sliding_window + 1) : 0;
        std::vector<double> sc;
        double mx = -1e300;
        for (int u = first; u <= t; ++u) {
          double d = 0;
          for (int i = 0; i < hd; ++i) d += double(q[t][h_ * hd + i]) * k[u][kh * hd + i];
          d /= std::sqrt(double(hd));
          sc.push_back(d);
          mx = std::max(mx, d);
        }
        double z = 0;
        for (double& e : sc) z += (e = std::exp(e - mx));
        for (int u = first; u <= t; ++u) {
          const double pr = sc[u - first] / z;
          for (int i = 0; i < hd; ++i) att[h_ * hd + i] += float(pr * v[u][kh * hd + i]);
        }
      }
      std::vector<float> o = ref::matvec(m.t(p + "attn_output.weight"), H * hd, D, att);
      if (gemma) ref::rmsnorm(o.data(), D, m.t(p + "post_attention_norm.weight").data(), s.norm_eps);
      for (int i = 0; i < D; ++i) x[t][i] += o[i];
      std::vector<float> h = x[t];
      ref::rmsnorm(h.data(), D, m.t(p + "ffn_norm.weight").data(), s.norm_eps);
      std::vector<float> gt = ref::matvec(m.t(p + "ffn_gate.weight"), D, s.ffn_dim, h);
      const std::vector<float> up = ref::matvec(m.t(p + "ffn_up.weight"), D, s.ffn_dim, h);
      for (int i = 0; i < s.ffn_dim; ++i) {
        const double g = gt[i];
        const double act = gemma ? 0.5 * g * (1 + std::tanh(std::sqrt(2 / M_PI) * (g + 0.044715 * g * g * g)))
                                 : g / (1 + std::exp(-g));
        gt[i] = float(act * up[i]);
      }
      std::vector<float> d = ref::matvec(m.t(p + "ffn_down.weight"), s.ffn_dim, D, gt);
      if (gemma) ref::rmsnorm(d.data(), D, m.t(p + "post_ffw_norm.weight").data(), s.norm_eps);
      for (int i = 0; i < D; ++i) x[t][i] += d[i];
    }
  }
  std::vector<float> logits(size_t(n) * m.vocab);
  const std::vector<float>& out_w = m.has("output.weight") ? m.t("output.weight") : m.t("token_embd.weight");
  for (int t = 0; t < n; ++t) {
    std::vector<float> h = x[t];
    ref::rmsnorm(h.data(), D, m.t("output_norm.weight").data(), s.norm_eps);
    const std::vector<float> l = ref::matvec(out_w, D, m.vocab, h);
    for (int i = 0; i < m.vocab; ++i) {
      logits[size_t(t) * m.vocab + i] = s.final_softcap > 0 ? s.final_softcap * std::tanh(l[i] / s.final_softcap) : l[i];
    }
  }
  return logits;
}

}  // namespace tq::test
