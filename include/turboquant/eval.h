#pragma once
// `tq eval`: the side-by-side comparison of KV-cache codecs on a real model. For every
// cache plan (K codec, V codec, layers kept at a higher precision) against an f16
// cache on the same text windows: bits per value and cache bytes, perplexity and its
// change, KL divergence and top-1 agreement of the next-token distributions, attention
// fidelity on the model's own Q/K/V, passkey retrieval, prefill and decode speed.
//
// The pipeline talks to the model through EvalModel, so it runs against the real
// runner (eval_model.h) and against a small fake model in the tests alike.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "turboquant/eval_attention.h"

namespace tq {

// Which codecs a cache uses: K and V, and layers overridden (e.g. first/last at q8_0).
struct CachePlan {
  std::string k_codec = "f16";
  std::string v_codec = "f16";
  std::map<int, std::pair<std::string, std::string>> layer_codecs;  // layer -> {k, v}
  std::string label() const;  // "turbo3", "turbo4/turbo3", "turbo3 +q8_0@0,29"
  bool is_f16() const { return k_codec == "f16" && v_codec == "f16" && layer_codecs.empty(); }
};

// Bytes of one token's K and V records over all layers and KV heads.
size_t plan_bytes_per_token(const CachePlan& plan, int n_layers, int n_kv_heads, int head_dim);

struct EvalModelInfo {
  std::string name;
  std::string arch;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int vocab = 0;
  int context = 0;
  int32_t bos = -1;  // < 0: the model adds none
  int32_t eos = -1;
  std::vector<AttentionSpec> attention;  // per layer
  std::string key_transform = "none";    // e.g. the Q/K balance, as reports print it
  std::string device = "CPU";            // where the forward passes run (tq eval --device)
};

// Receives each layer's q/k/v during a forward pass (see ForwardObserver in model.h).
struct QkvObserver {
  virtual ~QkvObserver() = default;
  virtual void on_qkv(int layer, int pos0, int n, const float* q, const float* k, const float* v) = 0;
};

// One sequence's compressed cache.
class EvalCache {
 public:
  virtual ~EvalCache() = default;
  virtual int length() const = 0;         // tokens held
  virtual size_t bytes_used() const = 0;  // bytes of the blocks this sequence occupies
  virtual size_t bytes_per_token() const = 0;  // K + V records of one token, all layers and heads
  virtual size_t sink_bytes() const { return 0; }  // per sequence, independent of its length
};

class EvalModel {
 public:
  virtual ~EvalModel() = default;
  virtual const EvalModelInfo& info() const = 0;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;  // no BOS
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // Codec seeds follow KvCache's rule with `seed` (see eval_attention.h).
  virtual std::unique_ptr<EvalCache> new_cache(const CachePlan& plan, int max_tokens,
                                               uint64_t seed) = 0;
  // n tokens after what `cache` holds; logits [n][vocab] when all_logits, else [vocab].
  virtual void forward(const int32_t* tokens, int n, EvalCache& cache, float* logits,
                       bool all_logits, QkvObserver* obs) = 0;
  // fn(0) .. fn(n-1), on the model's threads where it has them (the work between forward
  // passes: attention fidelity); in order on the caller's thread by default.
  virtual void parallel_for(int n, const std::function<void(int)>& fn) {
    for (int i = 0; i < n; ++i) fn(i);
  }
};

struct EvalOptions {
  std::vector<CachePlan> plans;     // the f16 reference always runs first, in addition
  int ctx = 2048;                   // tokens per window (clamped to the model's context)
  int windows = 2;
  int decode_tail = 16;             // last tokens of each window fed one at a time (decode)
  int attention_queries = 16;       // query positions per layer for attention fidelity (0: off)
  std::vector<int> passkey_lengths;  // prompt tokens (clamped to the model context); empty: none
  std::vector<double> passkey_depths{0.1, 0.5, 0.9};
  int passkey_answer_tokens = 8;
  uint64_t seed = 0;
};

struct PasskeyTrial {
  int length = 0;
  double depth = 0;
  std::string key;
  std::string answer;  // decoded greedy continuation
  bool found = false;
  // Logit of the key's first token minus the largest other logit after the prompt (nats):
  // > 0 when the first greedy token starts the key. Graded where `found` is all or nothing.
  double margin = 0;
};

struct CodecResult {
  CachePlan plan;
  std::string label;
  double bits_per_value = 0;   // K and V record bits over all layers / (2 · head_dim)
  double bytes_per_token = 0;
  double compression = 0;      // f16 bytes / these bytes
  size_t cache_bytes = 0;      // bytes the cache occupied for one full window
  size_t tokens = 0;           // predicted tokens scored
  double ppl = 0;
  double dppl_pct = 0;         // 100 · (ppl / ppl_f16 − 1)
  double kl = 0;               // mean KL(f16 ‖ codec) per predicted token
  double top1 = 0;             // fraction of positions whose argmax equals f16's
  double attn_cosine = 0;      // mean over layers, heads and queries
  double attn_cosine_min = 0;  // the worst layer/head
  int attn_worst_layer = -1;
  int attn_worst_head = -1;
  double attn_top1 = 0;
  double attn_top5 = 0;
  std::vector<std::vector<HeadFidelity>> attention;  // [layer][query head]
  std::vector<PasskeyTrial> passkey;
  int passkey_found = 0;
  double prefill_tps = 0;
  double decode_tps = 0;
  // Wall seconds this plan's own work took: forward passes over the windows, attention
  // fidelity (its share when plans are measured together), passkey trials.
  double windows_s = 0;
  double attention_s = 0;
  double passkey_s = 0;
};

// Wall seconds per phase of one run_eval (they add up to about EvalReport::seconds).
struct EvalPhases {
  double setup_s = 0;      // cache sizes, calibrated codecs, windows and passkey prompts
  double windows_s = 0;    // forward passes over the windows, all plans, and their metrics
  double attention_s = 0;  // attention fidelity on the captured Q/K/V
  double passkey_s = 0;    // passkey trials, all plans
};

struct EvalReport {
  EvalModelInfo model;
  EvalOptions options;  // with ctx as actually used
  std::string text_source;
  std::vector<CodecResult> rows;  // rows[0] is the f16 reference
  double seconds = 0;
  EvalPhases phases;
};

using EvalProgress = std::function<void(size_t done, size_t total, const std::string& what)>;

// Token windows of `ctx` tokens (BOS first when the model has one), evenly spaced over
// `text`, each starting at a paragraph. Throws tq::Error when the text is too short.
std::vector<std::vector<int32_t>> make_windows(const EvalModel& model, const std::string& text,
                                               int ctx, int windows);

EvalReport run_eval(EvalModel& model, const std::string& text, const EvalOptions& options,
                    const EvalProgress& progress = {});

std::string eval_table(const EvalReport& report);
// "time: T s = setup + windows + attention fidelity + passkey; per codec ...", one line.
std::string eval_timing(const EvalReport& report);
std::string eval_json(const EvalReport& report);
// The BENCHMARKS.md section body for one model; `header` holds command/commit/date/machine lines.
std::string eval_markdown(const EvalReport& report, const std::string& header);

// The codec comparison's default list: baselines, then the 3- and 4-bit family members.
const std::vector<std::string>& default_eval_codecs();
// Every family member worth a row (`tq eval --all`): adds fp8, the block rotations, QJL, q8_0h, tq2.5.
const std::vector<std::string>& all_eval_codecs();

// Cache plans from the command line: `codecs` each for K and V; or the cross product of
// `k_codecs` × `v_codecs` (a missing side stays f16, so `--k turbo3` isolates key error);
// `keep_layers` (negative counts from the end: −1 is the last layer) use `keep_codec` for
// K and V in every plan but f16. Throws tq::Error for unknown codecs and layers out of range.
std::vector<CachePlan> make_plans(const std::vector<std::string>& codecs,
                                  const std::vector<std::string>& k_codecs,
                                  const std::vector<std::string>& v_codecs,
                                  const std::vector<int>& keep_layers, const std::string& keep_codec,
                                  int n_layers);

}  // namespace tq
