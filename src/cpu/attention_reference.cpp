// The scalar oracle: for every query and head, one token at a time through the codec's
// own attention primitives, with an online softmax (running max m, running sum l).
// Slow and obviously right; every fast path is tested against it.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attention_common.h"
#include "turboquant/error.h"

namespace tq {

namespace detail {

void check_attend_args(const KvCache& cache, int layer, int seq, const float* q, int n_q, int q_pos0,
                       const AttentionParams& p, const float* out) {
  const KvCacheConfig& c = cache.config();
  auto bad = [](const std::string& what) { throw Error("attend: " + what); };
  if (layer < 0 || layer >= c.n_layers) bad("layer " + std::to_string(layer) + " out of range");
  if (!cache.has_sequence(seq)) bad("no live sequence " + std::to_string(seq));
  if (p.n_heads <= 0 || p.n_heads % c.n_kv_heads != 0)
    bad("n_heads (" + std::to_string(p.n_heads) + ") must be a positive multiple of n_kv_heads (" +
        std::to_string(c.n_kv_heads) + ")");
  if (!(p.scale > 0.f) || !std::isfinite(p.scale)) bad("scale must be finite and > 0, got " + std::to_string(p.scale));
  if (p.window < 0) bad("window must be >= 0, got " + std::to_string(p.window));
  if (!(p.softcap >= 0.f) || !std::isfinite(p.softcap)) bad("softcap must be finite and >= 0");
  if (n_q < 0) bad("n_q must be >= 0, got " + std::to_string(n_q));
  const int len = cache.length(layer, seq);
  if (q_pos0 < 0 || static_cast<int64_t>(q_pos0) + n_q > len)
    bad("queries at positions [" + std::to_string(q_pos0) + ", " + std::to_string(int64_t(q_pos0) + n_q) +
        ") are not inside the cache (sequence " + std::to_string(seq) + " has " + std::to_string(len) +
        " tokens in layer " + std::to_string(layer) + ")");
  if (n_q > 0 && (!q || !out)) bad("null q or out");
}

}  // namespace detail

void attend_reference(const KvCache& cache, int layer, int seq, const float* q, int n_q, int q_pos0,
                      const AttentionParams& p, float* out) {
  detail::check_attend_args(cache, layer, seq, q, n_q, q_pos0, p, out);
  const int D = cache.config().head_dim;
  const int group = p.n_heads / cache.config().n_kv_heads;
  for (int i = 0; i < n_q; ++i) {
    const int pos = q_pos0 + i;
    for (int h = 0; h < p.n_heads; ++h) {
      const Codec& kc = cache.k_codec(layer, h / group);
      const Codec& vc = cache.v_codec(layer, h / group);
      std::vector<float> state(kc.query_state_floats()), acc(vc.code_dim(), 0.f);
      const size_t row = static_cast<size_t>(i) * p.n_heads + h;
      // Keys stored in RoPE frames are scored by the query turned back like them.
      const RopeFrames* frames = cache.plan().key_frames(layer);
      int frame = -1;
      float m = -std::numeric_limits<float>::infinity(), l = 0.f;
      const int sinks = cache.sink_tokens();
      for (int t = detail::first_key(pos, p.window); t <= pos; ++t) {
        const int f = frames ? frames->frame(t) : 0;
        if (f != frame) {
          std::vector<float> qt(q + row * D, q + (row + 1) * D);
          if (frames) frames->turn_back(layer, frames->frame_start(f)).apply(qt.data());
          kc.prepare_query(qt.data(), state.data());
          frame = f;
        }
        const bool sink = t < sinks;  // read from the exact store
        const float dot = sink ? kc.dot_code(state.data(), cache.k_sink(layer, seq, h / group, t))
                               : kc.dot(state.data(), cache.k_record(layer, seq, h / group, t));
        const float s = detail::cap_score(p.scale * dot, p.softcap);
        if (s > m) {  // new running max: rescale what was summed so far
          const float corr = std::exp(m - s);
          for (float& a : acc) a *= corr;
          l *= corr;
          m = s;
        }
        const float w = std::exp(s - m);
        l += w;
        if (sink) {
          const float* y = cache.v_sink(layer, seq, h / group, t);
          for (size_t j = 0; j < acc.size(); ++j) acc[j] += w * y[j];
        } else {
          vc.accumulate(cache.v_record(layer, seq, h / group, t), w, acc.data());
        }
      }
      for (float& a : acc) a /= l;
      vc.finish(acc.data(), out + row * D);
    }
  }
}

}  // namespace tq
