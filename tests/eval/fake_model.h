#pragma once
// A tiny attention-only transformer behind the EvalModel interface, so the whole
// `tq eval` pipeline runs in tests without a GGUF file. It is a real (if small) model
// of what matters to the pipeline: its KV cache stores codec records written on
// append, and attention scores and sums them through the codec's attention
// primitives, so a coarser codec measurably changes its logits.
#include <cmath>
#include <string>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/eval.h"
#include "turboquant/rng.h"

namespace tq::testing {

class FakeCache : public EvalCache {
 public:
  struct Head {
    Codec k, v;
    std::vector<uint8_t> k_rec, v_rec;
  };
  std::vector<std::vector<Head>> heads;  // [layer][kv head]
  int tokens = 0;
  int length() const override { return tokens; }
  size_t bytes_used() const override {
    size_t b = 0;
    for (const auto& layer : heads)
      for (const auto& h : layer) b += h.k_rec.size() + h.v_rec.size();
    return b;
  }
  size_t bytes_per_token() const override {
    size_t b = 0;
    for (const auto& layer : heads)
      for (const auto& h : layer) b += h.k.record_bytes() + h.v.record_bytes();
    return b;
  }
};

class FakeModel : public EvalModel {
 public:
  static constexpr const char* kAlphabet = " abcdefghijklmnopqrstuvwxyz0123456789.,?!'-:;\n";
  static constexpr int kDim = 32;

  explicit FakeModel(int context = 256, int n_layers = 2, int n_heads = 4, int n_kv_heads = 2,
                     int head_dim = 64) {
    info_.name = "fake";
    info_.arch = "fake";
    info_.n_layers = n_layers;
    info_.n_heads = n_heads;
    info_.n_kv_heads = n_kv_heads;
    info_.head_dim = head_dim;
    info_.vocab = 2 + static_cast<int>(std::string(kAlphabet).size());
    info_.context = context;
    info_.bos = 0;
    info_.eos = 1;
    for (int l = 0; l < n_layers; ++l)
      info_.attention.push_back({n_heads, n_kv_heads, head_dim, 1.0f / std::sqrt(float(head_dim)),
                                 l % 2 ? 16 : 0, 0.0f});
    Rng rng(7);
    auto fill = [&](std::vector<float>& w, size_t n, double scale) {
      w.resize(n);
      for (auto& x : w) x = static_cast<float>(rng.gaussian() * scale);
    };
    fill(embed_, static_cast<size_t>(info_.vocab) * kDim, 1.0);
    layers_.resize(n_layers);
    for (auto& L : layers_) {
      fill(L.wq, static_cast<size_t>(n_heads) * head_dim * kDim, 1.0 / std::sqrt(kDim) * 2);
      fill(L.wk, static_cast<size_t>(n_kv_heads) * head_dim * kDim, 1.0 / std::sqrt(kDim) * 2);
      fill(L.wv, static_cast<size_t>(n_kv_heads) * head_dim * kDim, 1.0 / std::sqrt(kDim));
      fill(L.wo, static_cast<size_t>(kDim) * n_heads * head_dim, 1.0 / std::sqrt(n_heads * head_dim));
    }
  }

  const EvalModelInfo& info() const override { return info_; }

  std::vector<int32_t> encode(const std::string& text) const override {
    const std::string a = kAlphabet;
    std::vector<int32_t> ids;
    for (char c : text) {
      const size_t i = a.find(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      ids.push_back(2 + static_cast<int32_t>(i == std::string::npos ? 0 : i));
    }
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string s;
    for (int32_t id : ids)
      if (id >= 2) s += kAlphabet[id - 2];
    return s;
  }

  std::unique_ptr<EvalCache> new_cache(const CachePlan& plan, int, uint64_t seed) override {
    auto c = std::make_unique<FakeCache>();
    c->heads.resize(info_.n_layers);
    for (int l = 0; l < info_.n_layers; ++l) {
      auto it = plan.layer_codecs.find(l);
      const std::string kc = it == plan.layer_codecs.end() ? plan.k_codec : it->second.first;
      const std::string vc = it == plan.layer_codecs.end() ? plan.v_codec : it->second.second;
      for (int h = 0; h < info_.n_kv_heads; ++h) {
        const uint64_t stream = static_cast<uint64_t>(l) * 65536 + h * 2;
        c->heads[l].push_back({Codec::make(kc, info_.head_dim, derive_seed(seed, stream)),
                               Codec::make(vc, info_.head_dim, derive_seed(seed, stream + 1)), {}, {}});
      }
    }
    return c;
  }

  void forward(const int32_t* tokens, int n, EvalCache& cache_base, float* logits, bool all_logits,
               QkvObserver* obs) override {
    auto& cache = static_cast<FakeCache&>(cache_base);
    const int hd = info_.head_dim, nh = info_.n_heads, nkv = info_.n_kv_heads;
    std::vector<float> x(kDim), h(kDim), q(nh * hd), k(nkv * hd), v(nkv * hd), o(nh * hd), out(hd);
    for (int i = 0; i < n; ++i) {
      const int pos = cache.tokens;
      for (int d = 0; d < kDim; ++d) x[d] = embed_[static_cast<size_t>(tokens[i]) * kDim + d];
      for (int l = 0; l < info_.n_layers; ++l) {
        const Layer& L = layers_[l];
        double ss = 0;
        for (float xi : x) ss += xi * xi;
        const float inv = 1.0f / std::sqrt(static_cast<float>(ss / kDim) + 1e-6f);
        for (int d = 0; d < kDim; ++d) h[d] = x[d] * inv;
        matvec(L.wq, h, q);
        matvec(L.wk, h, k);
        matvec(L.wv, h, v);
        if (obs) obs->on_qkv(l, pos, 1, q.data(), k.data(), v.data());
        for (int g = 0; g < nkv; ++g) {
          auto& H = cache.heads[l][g];
          const size_t kb = H.k.record_bytes(), vb = H.v.record_bytes();
          H.k_rec.resize(kb * (pos + 1));
          H.v_rec.resize(vb * (pos + 1));
          H.k.encode(k.data() + g * hd, H.k_rec.data() + kb * pos);
          H.v.encode(v.data() + g * hd, H.v_rec.data() + vb * pos);
        }
        const AttentionSpec& a = info_.attention[l];
        for (int qh = 0; qh < nh; ++qh) {
          const auto& H = cache.heads[l][qh / (nh / nkv)];
          std::vector<float> state(H.k.query_state_floats()), w;
          H.k.prepare_query(q.data() + qh * hd, state.data());
          const int lo = a.window > 0 ? std::max(0, pos - a.window + 1) : 0;
          float m = -INFINITY;
          for (int t = lo; t <= pos; ++t) {
            w.push_back(a.scale * H.k.dot(state.data(), H.k_rec.data() + H.k.record_bytes() * t));
            m = std::max(m, w.back());
          }
          double sum = 0;
          for (float& s : w) sum += (s = std::exp(s - m));
          std::vector<float> acc(H.v.code_dim(), 0.0f);
          for (int t = lo; t <= pos; ++t)
            H.v.accumulate(H.v_rec.data() + H.v.record_bytes() * t, static_cast<float>(w[t - lo] / sum), acc.data());
          H.v.finish(acc.data(), out.data());
          std::copy(out.begin(), out.end(), o.begin() + qh * hd);
        }
        std::vector<float> delta(kDim);
        matvec(L.wo, o, delta);
        for (int d = 0; d < kDim; ++d) x[d] += delta[d];
      }
      cache.tokens = pos + 1;
      if (all_logits || i == n - 1) {
        float* row = logits + (all_logits ? static_cast<size_t>(i) * info_.vocab : 0);
        for (int t = 0; t < info_.vocab; ++t) {
          double s = 0;
          for (int d = 0; d < kDim; ++d) s += embed_[static_cast<size_t>(t) * kDim + d] * x[d];
          row[t] = static_cast<float>(s);
        }
      }
    }
  }

 private:
  struct Layer {
    std::vector<float> wq, wk, wv, wo;  // row-major [out][in]
  };
  static void matvec(const std::vector<float>& w, const std::vector<float>& x, std::vector<float>& y) {
    const size_t in = x.size();
    for (size_t r = 0; r < y.size(); ++r) {
      double s = 0;
      for (size_t c = 0; c < in; ++c) s += w[r * in + c] * x[c];
      y[r] = static_cast<float>(s);
    }
  }
  EvalModelInfo info_;
  std::vector<float> embed_;
  std::vector<Layer> layers_;
};

}  // namespace tq::testing
