// The `tq eval` pipeline: reference f16 run and every cache plan in lockstep over the
// same windows, chunk by chunk, so only one chunk of logits per cache is ever held
// (a 262,144-token vocabulary makes a window of logits gigabytes).
#include <algorithm>
#include <chrono>
#include <cstring>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/eval.h"
#include "turboquant/eval_metrics.h"
#include "turboquant/eval_passkey.h"
#include "turboquant/rng.h"

namespace tq {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Keeps every layer's K/V of the reference run and the queries of chosen positions.
class CaptureObserver : public QkvObserver {
 public:
  CaptureObserver(const EvalModelInfo& info, int n_tokens, std::vector<int> query_pos)
      : info_(info), layers_(info.n_layers) {
    const size_t kv = static_cast<size_t>(n_tokens) * info.n_kv_heads * info.head_dim;
    for (auto& l : layers_) {
      l.n_tokens = n_tokens;
      l.keys.assign(kv, 0.0f);
      l.values.assign(kv, 0.0f);
      l.query_pos = query_pos;
      l.queries.assign(query_pos.size() * info.n_heads * info.head_dim, 0.0f);
    }
  }
  void on_qkv(int layer, int pos0, int n, const float* q, const float* k, const float* v) override {
    if (layer < 0 || layer >= info_.n_layers) throw Error("eval capture: layer out of range");
    LayerCapture& l = layers_[layer];
    if (pos0 < 0 || pos0 + n > l.n_tokens) throw Error("eval capture: positions beyond the window");
    const size_t kv_row = static_cast<size_t>(info_.n_kv_heads) * info_.head_dim;
    const size_t q_row = static_cast<size_t>(info_.n_heads) * info_.head_dim;
    std::memcpy(l.keys.data() + pos0 * kv_row, k, n * kv_row * sizeof(float));
    std::memcpy(l.values.data() + pos0 * kv_row, v, n * kv_row * sizeof(float));
    for (size_t i = 0; i < l.query_pos.size(); ++i) {
      const int p = l.query_pos[i];
      if (p >= pos0 && p < pos0 + n)
        std::memcpy(l.queries.data() + i * q_row, q + (p - pos0) * q_row, q_row * sizeof(float));
    }
  }
  const LayerCapture& layer(int i) const { return layers_[i]; }

 private:
  const EvalModelInfo& info_;
  std::vector<LayerCapture> layers_;
};

// Per-plan running sums.
struct Tally {
  double nll_ref = 0, nll = 0, kl = 0;
  size_t tokens = 0, top1 = 0;
  double prefill_s = 0, decode_s = 0;
  size_t prefill_tokens = 0, decode_tokens = 0;
  size_t cache_bytes = 0;
};

std::vector<int> query_positions(int n, int count) {
  // Evenly over the last three quarters: early queries see too few tokens to tell
  // codecs apart.
  std::vector<int> pos;
  const int lo = n / 4, hi = n - 1;
  for (int i = 0; i < count; ++i) {
    const int p = count == 1 ? hi : lo + static_cast<int>(static_cast<long>(hi - lo) * i / (count - 1));
    if (pos.empty() || pos.back() != p) pos.push_back(p);
  }
  return pos;
}

const std::pair<std::string, std::string> layer_pair(const CachePlan& p, int layer) {
  auto it = p.layer_codecs.find(layer);
  return it == p.layer_codecs.end() ? std::make_pair(p.k_codec, p.v_codec) : it->second;
}

// Calibrated presets are built per model and take the keys without the Q/K balance the
// capture holds: their attention fidelity is not measured from the capture.
bool plan_is_calibrated(const CachePlan& p) {
  if (find_preset(p.k_codec) || find_preset(p.v_codec)) return true;
  for (const auto& [layer, kv] : p.layer_codecs)
    if (find_preset(kv.first) || find_preset(kv.second)) return true;
  return false;
}

// Attention fidelity of every plan that has it (not the reference row, not calibrated
// presets): each layer once for all of them against one f16 reference, the layers spread
// over the model's threads.
void fill_attention(EvalModel& model, std::vector<CodecResult>& rows, const CaptureObserver& cap, uint64_t seed) {
  const EvalModelInfo& info = model.info();
  std::vector<CodecResult*> measured;
  for (size_t r = 1; r < rows.size(); ++r)
    if (!plan_is_calibrated(rows[r].plan)) measured.push_back(&rows[r]);
  if (measured.empty()) return;
  std::vector<std::vector<std::vector<HeadFidelity>>> per_layer(info.n_layers);  // [layer][plan][head]
  model.parallel_for(info.n_layers, [&](int layer) {
    std::vector<CodecPair> pairs;
    for (const CodecResult* r : measured) pairs.push_back(layer_pair(r->plan, layer));
    per_layer[layer] = attention_fidelity(info.attention[layer], cap.layer(layer), layer, pairs, seed);
  });
  for (size_t i = 0; i < measured.size(); ++i) {
    CodecResult& r = *measured[i];
    r.attention.assign(info.n_layers, {});
    double sum = 0, top1 = 0, top5 = 0;
    size_t heads = 0;
    r.attn_cosine_min = 2;
    for (int layer = 0; layer < info.n_layers; ++layer) {
      r.attention[layer] = std::move(per_layer[layer][i]);
      for (int h = 0; h < static_cast<int>(r.attention[layer].size()); ++h) {
        const HeadFidelity& f = r.attention[layer][h];
        sum += f.cosine;
        top1 += f.top1;
        top5 += f.top5;
        ++heads;
        if (f.cosine < r.attn_cosine_min) {
          r.attn_cosine_min = f.cosine;
          r.attn_worst_layer = layer;
          r.attn_worst_head = h;
        }
      }
    }
    if (heads) {
      r.attn_cosine = sum / heads;
      r.attn_top1 = top1 / heads;
      r.attn_top5 = top5 / heads;
    }
  }
}

// Greedy continuation of a passkey prompt with one plan's cache.
PasskeyTrial run_passkey(EvalModel& model, const CachePlan& plan, const PasskeyPrompt& prompt,
                         int answer_tokens, uint64_t seed) {
  const EvalModelInfo& info = model.info();
  const int n = static_cast<int>(prompt.tokens.size());
  auto cache = model.new_cache(plan, n + answer_tokens, seed);
  std::vector<float> logits(info.vocab);
  model.forward(prompt.tokens.data(), n, *cache, logits.data(), false, nullptr);
  const double margin = first_token_margin(logits.data(), info.vocab, prompt.answer_first);
  std::vector<int32_t> answer;
  for (int i = 0; i < answer_tokens; ++i) {
    const int32_t tok = top_k(logits.data(), info.vocab, 1)[0];
    if (tok == info.eos) break;
    answer.push_back(tok);
    if (i + 1 < answer_tokens) model.forward(&tok, 1, *cache, logits.data(), false, nullptr);
  }
  PasskeyTrial t;
  t.key = prompt.key;
  t.answer = model.decode(answer);
  t.found = passkey_found(t.answer, t.key);
  t.margin = margin;
  return t;
}

}  // namespace

EvalReport run_eval(EvalModel& model, const std::string& text, const EvalOptions& options,
                    const EvalProgress& progress) {
  const auto t_start = Clock::now();
  EvalReport report;
  report.model = model.info();
  report.options = options;
  const EvalModelInfo& info = report.model;
  if (static_cast<int>(info.attention.size()) != info.n_layers)
    throw Error("eval: the model describes attention for " + std::to_string(info.attention.size()) +
                " of " + std::to_string(info.n_layers) + " layers");
  EvalOptions& opt = report.options;
  if (info.context > 0) opt.ctx = std::min(opt.ctx, info.context);
  opt.decode_tail = std::clamp(opt.decode_tail, 0, opt.ctx - 1);
  if (info.context > 0)
    for (int& len : opt.passkey_lengths) len = std::min(len, info.context);

  // Row 0 is the f16 reference; a requested f16 plan is that row.
  std::vector<CachePlan> plans{CachePlan{}};
  for (const CachePlan& p : opt.plans)
    if (!p.is_f16()) plans.push_back(p);
  const size_t n_rows = plans.size();
  // Bytes as the model's cache lays them out (calibrated presets differ per model).
  // Bytes as the model's cache lays them out (calibrated presets differ per model), with a
  // sink store's bytes spread over the window's tokens.
  auto plan_bytes = [&](const CachePlan& p) {
    const auto c = model.new_cache(p, opt.ctx, opt.seed);
    return static_cast<double>(c->bytes_per_token()) + static_cast<double>(c->sink_bytes()) / opt.ctx;
  };
  const double f16_bytes = plan_bytes(plans[0]);
  report.rows.resize(n_rows);
  for (size_t r = 0; r < n_rows; ++r) {
    CodecResult& row = report.rows[r];
    row.plan = plans[r];
    row.label = plans[r].label();
    const double b = plan_bytes(plans[r]);
    row.bytes_per_token = b;
    row.bits_per_value = 8.0 * b / (2.0 * info.n_layers * info.n_kv_heads * info.head_dim);
    row.compression = static_cast<double>(f16_bytes) / b;
  }

  const auto windows = make_windows(model, text, opt.ctx, opt.windows);
  // Built up front so a length too short for the prompt fails before minutes of work.
  std::vector<PasskeyPrompt> passkeys;
  for (int len : opt.passkey_lengths)
    for (double depth : opt.passkey_depths)
      passkeys.push_back(make_passkey_prompt([&](const std::string& s) { return model.encode(s); }, info.bos,
                                             len, depth, derive_seed(opt.seed ^ 0x9a55c0deULL, passkeys.size())));
  size_t passkey_tokens = 0;
  for (int len : opt.passkey_lengths) passkey_tokens += static_cast<size_t>(len) * opt.passkey_depths.size();
  const size_t total = n_rows * (windows.size() * opt.ctx + passkey_tokens) +
                       (opt.attention_queries > 0 ? (n_rows - 1) * opt.ctx : 0);
  size_t done = 0;
  auto tick = [&](size_t units, const std::string& what) {
    done += units;
    if (progress) progress(done, total, what);
  };

  // Chunks bounded so a chunk of logits stays near 64 MB whatever the vocabulary (and the
  // reference probabilities, in double, near 128 MB).
  const int chunk = std::clamp(static_cast<int>((16u << 20) / std::max(info.vocab, 1)), 1, 256);
  std::vector<float> ref_logits(static_cast<size_t>(chunk) * info.vocab);
  std::vector<float> test_logits(ref_logits.size());
  std::vector<Tally> tally(n_rows);
  std::vector<ReferenceDistribution> ref_dist(chunk);
  std::vector<NextTokenComparison> compared(chunk);

  report.phases.setup_s = seconds_since(t_start);
  const auto t_windows = Clock::now();
  for (size_t w = 0; w < windows.size(); ++w) {
    const auto& toks = windows[w];
    const int n = static_cast<int>(toks.size());
    std::vector<std::unique_ptr<EvalCache>> caches;
    for (const CachePlan& p : plans) caches.push_back(model.new_cache(p, n, opt.seed));
    std::unique_ptr<CaptureObserver> capture;
    if (w == 0 && opt.attention_queries > 0)
      capture = std::make_unique<CaptureObserver>(info, n, query_positions(n, opt.attention_queries));
    const int prefill_end = std::max(1, n - opt.decode_tail);

    for (int s = 0; s < n;) {
      // Prefill in chunks, then the tail one token at a time (decode).
      const bool decoding = s >= prefill_end;
      const int e = decoding ? s + 1 : std::min(s + chunk, prefill_end);
      const int m = e - s;
      for (size_t r = 0; r < n_rows; ++r) {
        float* logits = r == 0 ? ref_logits.data() : test_logits.data();
        const auto t0 = Clock::now();
        model.forward(toks.data() + s, m, *caches[r], logits, true, r == 0 ? capture.get() : nullptr);
        const double secs = seconds_since(t0);
        Tally& t = tally[r];
        (decoding ? t.decode_s : t.prefill_s) += secs;
        (decoding ? t.decode_tokens : t.prefill_tokens) += m;
        // The reference distribution once per position for every plan; positions in parallel
        // (a 49,152- to 262,144-entry softmax each), summed in order.
        const int scored = std::min(m, n - 1 - s);  // the last token predicts nothing we can score
        auto ref_at = [&](int i) { return ref_logits.data() + static_cast<size_t>(i) * info.vocab; };
        if (r == 0) {
          model.parallel_for(scored, [&](int i) { reference_distribution(ref_at(i), info.vocab, ref_dist[i]); });
          for (int i = 0; i < scored; ++i) {
            const double nll = ref_dist[i].lse - ref_at(i)[toks[s + i + 1]];
            t.nll_ref += nll;
            t.nll += nll;
            ++t.top1;
          }
        } else {
          model.parallel_for(scored, [&](int i) {
            compared[i] = compare_next_token(ref_at(i), ref_dist[i], logits + static_cast<size_t>(i) * info.vocab,
                                             info.vocab, toks[s + i + 1]);
          });
          for (int i = 0; i < scored; ++i) {
            t.nll_ref += compared[i].nll_ref;
            t.nll += compared[i].nll_test;
            t.kl += compared[i].kl;
            t.top1 += compared[i].top1_agree;
          }
        }
        t.tokens += scored;
        report.rows[r].windows_s += seconds_since(t0);
        tick(m, "window " + std::to_string(w + 1) + "/" + std::to_string(windows.size()) + " " +
                    report.rows[r].label);
      }
      s = e;
    }
    for (size_t r = 0; r < n_rows; ++r)
      tally[r].cache_bytes = std::max(tally[r].cache_bytes, caches[r]->bytes_used());

    if (capture) {
      // Row 0 is the reference attention itself: nothing to compare.
      const auto t0 = Clock::now();
      fill_attention(model, report.rows, *capture, opt.seed);
      const double secs = seconds_since(t0);
      report.phases.attention_s += secs;
      size_t measured = 0;
      for (size_t r = 1; r < n_rows; ++r) measured += !report.rows[r].attention.empty();
      for (size_t r = 1; r < n_rows; ++r)
        if (!report.rows[r].attention.empty()) report.rows[r].attention_s += secs / measured;
      tick((n_rows - 1) * opt.ctx, "attention fidelity");
    }
  }
  report.phases.windows_s = seconds_since(t_windows) - report.phases.attention_s;

  for (size_t r = 0; r < n_rows; ++r) {
    CodecResult& row = report.rows[r];
    const Tally& t = tally[r];
    row.tokens = t.tokens;
    row.ppl = perplexity(t.nll, t.tokens);
    row.dppl_pct = 100.0 * (row.ppl / perplexity(t.nll_ref, t.tokens) - 1.0);
    row.kl = t.kl / t.tokens;
    row.top1 = static_cast<double>(t.top1) / t.tokens;
    row.cache_bytes = t.cache_bytes;
    row.prefill_tps = t.prefill_s > 0 ? t.prefill_tokens / t.prefill_s : 0;
    row.decode_tps = t.decode_s > 0 ? t.decode_tokens / t.decode_s : 0;
  }

  const auto t_passkey = Clock::now();
  for (size_t i = 0; i < passkeys.size(); ++i) {
    const PasskeyPrompt& prompt = passkeys[i];
    const int len = static_cast<int>(prompt.tokens.size());
    const double depth = opt.passkey_depths[i % opt.passkey_depths.size()];
    for (size_t r = 0; r < n_rows; ++r) {
      const auto t0 = Clock::now();
      PasskeyTrial t = run_passkey(model, plans[r], prompt, opt.passkey_answer_tokens, opt.seed);
      report.rows[r].passkey_s += seconds_since(t0);
      t.length = len;
      t.depth = depth;
      report.rows[r].passkey_found += t.found;
      report.rows[r].passkey.push_back(std::move(t));
      tick(len, "passkey " + std::to_string(len) + " " + report.rows[r].label);
    }
  }
  report.phases.passkey_s = seconds_since(t_passkey);
  report.seconds = seconds_since(t_start);
  return report;
}

}  // namespace tq
