#include <algorithm>
#include <cmath>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/eval_attention.h"
#include "turboquant/eval_metrics.h"
#include "turboquant/rng.h"

namespace tq {

namespace {

// One KV head's cache in one codec: records of every captured position.
struct HeadCache {
  Codec k, v;
  std::vector<uint8_t> k_rec, v_rec;
};

HeadCache encode_head(const AttentionSpec& s, const LayerCapture& cap, int layer, int h,
                      const std::string& kc, const std::string& vc, uint64_t seed, int n) {
  const uint64_t stream = static_cast<uint64_t>(layer) * 65536 + static_cast<uint64_t>(h) * 2;
  HeadCache c{Codec::make(kc, s.head_dim, derive_seed(seed, stream)),
              Codec::make(vc, s.head_dim, derive_seed(seed, stream + 1)), {}, {}};
  const size_t kb = c.k.record_bytes(), vb = c.v.record_bytes();
  c.k_rec.resize(kb * n);
  c.v_rec.resize(vb * n);
  for (int t = 0; t < n; ++t) {
    const size_t off = (static_cast<size_t>(t) * s.n_kv_heads + h) * s.head_dim;
    c.k.encode(cap.keys.data() + off, c.k_rec.data() + kb * t);
    c.v.encode(cap.values.data() + off, c.v_rec.data() + vb * t);
  }
  return c;
}

// Softmax attention of one query over positions lo..p of one head cache: weights and output.
void attend_one(const AttentionSpec& s, const HeadCache& c, const float* q, int lo, int p,
                std::vector<float>& w, std::vector<float>& out) {
  std::vector<float> state(c.k.query_state_floats());
  c.k.prepare_query(q, state.data());
  const size_t kb = c.k.record_bytes(), vb = c.v.record_bytes();
  const int n = p - lo + 1;
  w.resize(n);
  float m = -INFINITY;
  for (int t = lo; t <= p; ++t) {
    float x = s.scale * c.k.dot(state.data(), c.k_rec.data() + kb * t);
    if (s.softcap > 0) x = s.softcap * std::tanh(x / s.softcap);
    w[t - lo] = x;
    m = std::max(m, x);
  }
  double sum = 0;
  for (float& x : w) sum += (x = std::exp(x - m));
  std::vector<float> acc(c.v.code_dim(), 0.0f);
  for (int t = lo; t <= p; ++t) {
    w[t - lo] = static_cast<float>(w[t - lo] / sum);
    c.v.accumulate(c.v_rec.data() + vb * t, w[t - lo], acc.data());
  }
  out.resize(s.head_dim);
  c.v.finish(acc.data(), out.data());
}

// Checks the shapes; returns how many leading positions any query sees.
int check_capture(const AttentionSpec& s, const LayerCapture& cap) {
  if (s.n_heads <= 0 || s.n_kv_heads <= 0 || s.n_heads % s.n_kv_heads != 0)
    throw Error("attention_fidelity: " + std::to_string(s.n_heads) + " query heads cannot share " +
                std::to_string(s.n_kv_heads) + " KV heads");
  const size_t kv_size = static_cast<size_t>(cap.n_tokens) * s.n_kv_heads * s.head_dim;
  if (cap.keys.size() != kv_size || cap.values.size() != kv_size ||
      cap.queries.size() != cap.query_pos.size() * s.n_heads * s.head_dim)
    throw Error("attention_fidelity: capture sizes do not match the attention shape");
  int n = 0;  // positions that any query sees
  for (int p : cap.query_pos) {
    if (p < 0 || p >= cap.n_tokens)
      throw Error("attention_fidelity: query position " + std::to_string(p) + " outside 0.." +
                  std::to_string(cap.n_tokens - 1));
    n = std::max(n, p + 1);
  }
  return n;
}

}  // namespace

std::vector<float> attention_outputs(const AttentionSpec& s, const LayerCapture& cap, int layer,
                                     const std::string& kc, const std::string& vc, uint64_t seed) {
  const int n = check_capture(s, cap);
  const int group = s.n_heads / s.n_kv_heads;
  std::vector<float> out(cap.query_pos.size() * s.n_heads * s.head_dim), w, o;
  for (int h = 0; h < s.n_kv_heads; ++h) {
    const HeadCache c = encode_head(s, cap, layer, h, kc, vc, seed, n);
    for (int qh = h * group; qh < (h + 1) * group; ++qh) {
      for (size_t i = 0; i < cap.query_pos.size(); ++i) {
        const int p = cap.query_pos[i];
        const size_t at = (i * s.n_heads + qh) * s.head_dim;
        attend_one(s, c, cap.queries.data() + at, s.window > 0 ? std::max(0, p - s.window + 1) : 0, p, w, o);
        std::copy(o.begin(), o.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
      }
    }
  }
  return out;
}

std::vector<std::vector<HeadFidelity>> attention_fidelity(const AttentionSpec& s, const LayerCapture& cap, int layer,
                                                          const std::vector<CodecPair>& codecs, uint64_t seed) {
  const int n = check_capture(s, cap);
  const int group = s.n_heads / s.n_kv_heads;
  const size_t queries = cap.query_pos.size();
  std::vector<std::vector<HeadFidelity>> result(codecs.size(), std::vector<HeadFidelity>(s.n_heads));
  std::vector<float> w, o, o_ref(static_cast<size_t>(group) * queries * s.head_dim);
  std::vector<int> best(static_cast<size_t>(group) * queries);
  auto query = [&](int qh, size_t i) { return cap.queries.data() + (i * s.n_heads + qh) * s.head_dim; };
  auto first = [&](size_t i) { return s.window > 0 ? std::max(0, cap.query_pos[i] - s.window + 1) : 0; };
  for (int h = 0; h < s.n_kv_heads; ++h) {
    // The f16 attention of this KV head's queries, once for every codec compared with it.
    const HeadCache ref = encode_head(s, cap, layer, h, "f16", "f16", seed, n);
    for (int g = 0; g < group; ++g) {
      for (size_t i = 0; i < queries; ++i) {
        const size_t at = g * queries + i;
        attend_one(s, ref, query(h * group + g, i), first(i), cap.query_pos[i], w, o);
        best[at] = top_k(w.data(), static_cast<int>(w.size()), 1)[0];
        std::copy(o.begin(), o.end(), o_ref.begin() + static_cast<std::ptrdiff_t>(at * s.head_dim));
      }
    }
    for (size_t c = 0; c < codecs.size(); ++c) {
      const HeadCache test = encode_head(s, cap, layer, h, codecs[c].first, codecs[c].second, seed, n);
      for (int g = 0; g < group; ++g) {
        HeadFidelity& f = result[c][h * group + g];
        for (size_t i = 0; i < queries; ++i) {
          const size_t at = g * queries + i;
          attend_one(s, test, query(h * group + g, i), first(i), cap.query_pos[i], w, o);
          const std::vector<int> top5 = top_k(w.data(), static_cast<int>(w.size()), 5);
          f.cosine += cosine(o_ref.data() + at * s.head_dim, o.data(), s.head_dim);
          f.top1 += top5[0] == best[at];
          f.top5 += std::find(top5.begin(), top5.end(), best[at]) != top5.end();
          ++f.queries;
        }
        if (f.queries) {
          f.cosine /= f.queries;
          f.top1 /= f.queries;
          f.top5 /= f.queries;
        }
      }
    }
  }
  return result;
}

std::vector<HeadFidelity> attention_fidelity(const AttentionSpec& s, const LayerCapture& cap,
                                             int layer, const std::string& kc,
                                             const std::string& vc, uint64_t seed) {
  return attention_fidelity(s, cap, layer, std::vector<CodecPair>{{kc, vc}}, seed)[0];
}

}  // namespace tq
