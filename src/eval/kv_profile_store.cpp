#include "turboquant/kv_profile_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>

#include "turboquant/error.h"
#include "turboquant/eval_metrics.h"
#include "turboquant/model.h"
#include "turboquant/sampler.h"
#include "turboquant/thread_pool.h"

namespace tq {

// The calibration texts: the built-in text continued by the model, kCalibrationContinuations
// times from different seeds, kGeneratedCalibrationTokens each. One continuation of 768 took
// SmolLM2's tq3 from KL 0.074 to 0.070; four (~4600 tokens in all instead of ~1150) lowered
// Gemma 3's presets' KL by 10-24% (one KV head of 256: 256² moments to estimate) and kept or
// lowered SmolLM2's, where one continuation of 3072 had raised it by 4-17%: a small model's
// long self-sampled text drifts from the register (docs/EVAL.md).
constexpr int kGeneratedCalibrationTokens = 768;
constexpr int kCalibrationContinuations = 4;
// A profile measured on fewer tokens predates this recipe and is measured again.
constexpr int64_t kRecipeMinTokens = int64_t(kCalibrationContinuations) * kGeneratedCalibrationTokens;
// The sensitivity passes (2 × n_layers forward passes) read this many of them.
constexpr int kSensitivityTokens = 640;
// Logits held at once by the sensitivity passes (a chunk of positions).
constexpr size_t kSensitivityLogitBytes = 8u << 20;
// The reference distribution of a sensitivity position: its top tokens up to 1 − kTailMass of
// the mass, at most kTopTokens of them (8 MB for 640 positions).
constexpr int kTopTokens = 1024;
constexpr double kTailMass = 1e-4;

namespace detail {

namespace {
double log_sum_exp(const float* x, int n) {
  const double m = *std::max_element(x, x + n);
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i]) - m);
  return m + std::log(s);
}
}  // namespace

TopTokens top_tokens(const float* logits, int vocab, int max_top, double tail_mass) {
  if (vocab <= 0 || max_top <= 0) throw Error("top_tokens: empty vocabulary or no tokens to keep");
  const double lse = log_sum_exp(logits, vocab);
  const int k = std::min(max_top, vocab);
  std::vector<int32_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  auto higher = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), higher);
  TopTokens t;
  double kept = 0;
  for (int i = 0; i < k && kept < 1 - tail_mass; ++i) {
    const double lp = logits[idx[i]] - lse;
    t.id.push_back(idx[i]);
    t.logp.push_back(lp);
    kept += std::exp(lp);
  }
  t.tail = std::max(0.0, 1 - kept);
  return t;
}

double coarse_kl(const TopTokens& ref, const float* test_logits, int vocab) {
  const double lse = log_sum_exp(test_logits, vocab);
  double kl = 0, test_kept = 0;
  for (size_t i = 0; i < ref.id.size(); ++i) {
    const double lq = test_logits[ref.id[i]] - lse, lp = ref.logp[i];
    kl += std::exp(lp) * (lp - lq);
    test_kept += std::exp(lq);
  }
  const double test_tail = std::max(1 - test_kept, 1e-300);
  if (ref.tail > 0) kl += ref.tail * std::log(ref.tail / test_tail);
  return std::max(kl, 0.0);  // rounding can leave −1e-17 for identical inputs
}

}  // namespace detail

std::string default_profile_path(const std::string& model_path, uint64_t model_hash) {
  std::string dir;
  if (const char* d = std::getenv("TQ_PROFILE_DIR"); d && *d) dir = d;
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.cache/turboquant/profiles";
  else dir = ".";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(model_hash));
  return dir + "/" + std::filesystem::path(model_path).filename().string() + "." + hex + ".tqprof";
}

namespace {

// KL on the calibration text when only one layer's K or V is compressed by the probe preset,
// per unit of the error its layout predicts: how much a unit of that error costs in the
// model's output. One forward pass per layer and side, plus one for the reference.
// Memory stays small (issue 12: calibration runs inside `tq run` and `tq eval`): logits a
// chunk of tokens at a time (the whole text's would be 640 × 262,144 floats, 671 MB, on
// Gemma 3), and the reference kept as each position's top tokens (coarse_kl).
void measure_sensitivity(Model& model, KvProfile& p, const std::vector<int32_t>& tokens,
                         const std::function<void(const std::string&)>& log) {
  const ModelConfig& c = model.config();
  const int n = static_cast<int>(tokens.size());
  CalibrationOptions opt;
  opt.context = n;
  const std::string probe_name = "tq3";
  auto codecs = std::make_shared<CalibratedCodecs>(build_calibrated(p, *find_preset(probe_name), opt));
  const int chunk = std::clamp(static_cast<int>(kSensitivityLogitBytes / (sizeof(float) * c.vocab)), 1, n);
  std::vector<float> logits(static_cast<size_t>(chunk) * c.vocab);
  // Runs the text through a cache with `layers` compressed, chunk by chunk; `per_chunk`
  // sees the logits of positions [s, s + m).
  auto run = [&](const std::map<int, std::pair<std::string, std::string>>& layers,
                 const std::function<void(int s, int m)>& per_chunk) {
    KvCacheConfig cfg = model.cache_config("f16", "f16", n);
    cfg.layer_codecs = layers;
    cfg.calibrated = codecs;
    cfg.sink_tokens = codecs->sink_tokens;
    KvCache cache(cfg);
    const int seq = cache.add_sequence();
    for (int s = 0; s < n; s += chunk) {
      const int m = std::min(chunk, n - s);
      model.forward(tokens.data() + s, m, cache, seq, logits.data(), true);
      per_chunk(s, m);
    }
  };
  auto row = [&](int i) { return logits.data() + static_cast<size_t>(i) * c.vocab; };
  std::vector<detail::TopTokens> ref(n);
  run({}, [&](int s, int m) {
    model.pool().parallel_for(m, [&](int i) { ref[s + i] = detail::top_tokens(row(i), c.vocab, kTopTokens, kTailMass); });
  });
  p.k_sensitivity.assign(c.n_layers, 0);
  p.v_sensitivity.assign(c.n_layers, 0);
  std::vector<double> kl_at(chunk);
  for (int l = 0; l < c.n_layers; ++l) {
    for (int side = 0; side < 2; ++side) {
      double kl = 0;
      run({{l, side == 0 ? std::make_pair(probe_name, std::string("f16")) : std::make_pair(std::string("f16"), probe_name)}},
          [&](int s, int m) {
            model.pool().parallel_for(m, [&](int i) { kl_at[i] = detail::coarse_kl(ref[s + i], row(i), c.vocab); });
            for (int i = 0; i < m; ++i)
              if (s + i >= 1) kl += kl_at[i];  // position 0 sees only itself
          });
      kl /= (n - 1);
      const double predicted = (side == 0 ? codecs->keys : codecs->values)[l].predicted;
      (side == 0 ? p.k_sensitivity : p.v_sensitivity)[l] = predicted > 0 ? std::max(kl, 0.0) / predicted : 0;
    }
    if (log) log("sensitivity: layer " + std::to_string(l + 1) + "/" + std::to_string(c.n_layers));
  }
}

}  // namespace

namespace {

// The built-in text, continued by the model itself (sampling seeded by `seed`, f16 cache):
// more tokens in the model's own register, and still never the evaluation text.
std::vector<int32_t> calibration_tokens(Model& model, int generated, uint64_t seed = 0x7cab) {
  const Tokenizer& tok = model.tokenizer();
  std::vector<int32_t> tokens = tok.encode(calibration_text(), tok.add_bos_default());
  if (generated <= 0) return tokens;
  const int vocab = model.config().vocab;
  KvCache cache(model.cache_config("f16", "f16", static_cast<int>(tokens.size()) + generated));
  const int seq = cache.add_sequence();
  std::vector<float> logits(vocab);
  model.forward(tokens.data(), static_cast<int>(tokens.size()), cache, seq, logits.data(), false);
  Rng rng(seed);
  SamplerParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 40;
  for (int i = 0; i < generated; ++i) {
    int32_t next = sample_token(logits.data(), vocab, sp, rng);
    if (next == tok.eos()) next = tokens.back();  // keep going: the text, not its end, is wanted
    tokens.push_back(next);
    model.forward(&next, 1, cache, seq, logits.data(), false);
  }
  return tokens;
}

}  // namespace

KvProfile calibrate_profile(Model& model, const std::string& model_path,
                            const std::function<void(const std::string&)>& log) {
  if (log)
    log("generating " + std::to_string(kCalibrationContinuations) + " x " + std::to_string(kGeneratedCalibrationTokens) +
        " calibration tokens with the model ...");
  std::vector<std::vector<int32_t>> texts;
  for (int i = 0; i < kCalibrationContinuations; ++i)
    texts.push_back(calibration_tokens(model, kGeneratedCalibrationTokens, 0x7cab + i));
  const std::vector<int32_t>& tokens = texts.front();
  const QkBalancePause pause(model);  // the presets take the model's keys as they are
  KvProfile p = model.measure_kv_profile(texts);
  p.model_hash = model_file_hash(model_path);
  measure_sensitivity(model, p,
                     std::vector<int32_t>(tokens.begin(), tokens.begin() + std::min<size_t>(tokens.size(), kSensitivityTokens)),
                     log);
  return p;
}

KvProfile load_or_calibrate_profile(Model& model, const std::string& model_path, const std::string& profile_path,
                                    const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& s) { if (log) log(s); };
  const uint64_t hash = model_file_hash(model_path);
  const std::string path = profile_path.empty() ? default_profile_path(model_path, hash) : profile_path;
  if (std::filesystem::exists(path)) {
    KvProfile p;
    try {
      p = load_profile(path);
    } catch (const Error& e) {
      if (!profile_path.empty()) throw;  // the user's own file: say what is wrong with it
      say(std::string("calibration profile ") + path + " is unreadable (" + e.what() + "): measuring again");
      p.model_hash = ~hash;
    }
    if (p.model_hash == hash && p.tokens >= kRecipeMinTokens) {
      say("calibration profile: " + path);
      return p;
    }
    if (p.model_hash == hash) {
      const std::string older = "calibration profile " + path + " was measured on " + std::to_string(p.tokens) +
                                " tokens, an older recipe (this version measures " +
                                std::to_string(kCalibrationContinuations) + " continuations of " +
                                std::to_string(kGeneratedCalibrationTokens) + " tokens)";
      if (!profile_path.empty()) {  // the user's own file is never replaced unasked
        say(older + ": used as it is; `tq calibrate --force --profile " + path + "` measures it again");
        return p;
      }
      say(older + ": measuring again");
    }
    if (!profile_path.empty())
      throw Error("calibration profile '" + path + "' was measured on another model file (hash differs); "
                  "run `tq calibrate` for this model or drop --profile");
    if (p.n_layers > 0) say("calibration profile " + path + " is stale (model file changed): measuring again");
  }
  say("calibration profile: measuring on the built-in text (once per model) ...");
  KvProfile p = calibrate_profile(model, model_path, log);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  save_profile(p, path);
  say("calibration profile: saved " + path + " (" + std::to_string(p.tokens) + " tokens)");
  // The file's profile (its statistics rounded to f32), not the one in memory: codecs built
  // now must equal the ones every later run builds from the file (sessions check that).
  // One profile in memory at a time (Gemma 3's is 36 MiB).
  const std::vector<uint8_t> bytes = serialize_profile(p);
  p = KvProfile{};
  return deserialize_profile(bytes);
}

}  // namespace tq
