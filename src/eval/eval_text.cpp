// Cache plans' sizes and the text windows of the evaluation.
#include <algorithm>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/eval.h"

namespace tq {

std::string CachePlan::label() const {
  std::string s = k_codec == v_codec ? k_codec : k_codec + "/" + v_codec;
  if (layer_codecs.empty()) return s;
  // Layers kept at one codec pair are written "+q8_0@0,29"; mixed overrides list each.
  std::map<std::pair<std::string, std::string>, std::string> by_pair;
  for (const auto& [layer, kv] : layer_codecs) {
    std::string& layers = by_pair[kv];
    if (!layers.empty()) layers += ',';
    layers += std::to_string(layer);
  }
  for (const auto& [kv, layers] : by_pair) {
    s += " +";
    s += kv.first == kv.second ? kv.first : kv.first + "/" + kv.second;
    s += "@";
    s += layers;
  }
  return s;
}

size_t plan_bytes_per_token(const CachePlan& plan, int n_layers, int n_kv_heads, int head_dim) {
  size_t bytes = 0;
  for (int layer = 0; layer < n_layers; ++layer) {
    auto it = plan.layer_codecs.find(layer);
    const std::string& kc = it == plan.layer_codecs.end() ? plan.k_codec : it->second.first;
    const std::string& vc = it == plan.layer_codecs.end() ? plan.v_codec : it->second.second;
    bytes += Codec::make(kc, head_dim).record_bytes() + Codec::make(vc, head_dim).record_bytes();
  }
  return bytes * static_cast<size_t>(n_kv_heads);
}

std::vector<std::vector<int32_t>> make_windows(const EvalModel& model, const std::string& text,
                                               int ctx, int windows) {
  if (ctx < 2) throw Error("eval: a window needs at least 2 tokens, got ctx " + std::to_string(ctx));
  if (windows < 1) throw Error("eval: need at least one window, got " + std::to_string(windows));
  const int32_t bos = model.info().bos;
  const size_t want = static_cast<size_t>(ctx - (bos >= 0));
  std::vector<std::vector<int32_t>> out;
  for (int w = 0; w < windows; ++w) {
    // Start in the middle of the w-th of `windows` equal slices, at the next paragraph,
    // so windows never overlap for texts long enough and never start mid-sentence.
    size_t start = static_cast<size_t>((w + 0.5) * static_cast<double>(text.size()) / windows);
    const size_t para = text.find("\n\n", start);
    start = para == std::string::npos ? start : para + 2;
    std::vector<int32_t> ids;
    // English averages ~4.5 characters per token; 8 leaves room for long words.
    for (size_t chars = want * 8; ids.size() < want; chars *= 2) {
      ids = model.encode(text.substr(start, chars));
      if (start + chars >= text.size()) break;
    }
    if (ids.size() < want)
      throw Error("eval: the text is too short for " + std::to_string(windows) + " windows of " +
                  std::to_string(ctx) + " tokens (window " + std::to_string(w) + " got " +
                  std::to_string(ids.size()) + ")");
    std::vector<int32_t> window;
    if (bos >= 0) window.push_back(bos);
    window.insert(window.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(want));
    out.push_back(std::move(window));
  }
  return out;
}


// What a user must see: the baselines (f16, q8_0, llama.cpp's rotated q4_0h), one each of
// the data-oblivious rotations (turbo, rht) and the calibrated presets. Unrotated q4_0 and
// turbo4 are in --all.
const std::vector<std::string>& default_eval_codecs() {
  static const std::vector<std::string> names = {"f16", "q8_0",  "q4_0h", "turbo3", "rht3",
                                                 "tq3", "tq3.5", "tq4",   "tq4.25"};
  return names;
}

const std::vector<std::string>& all_eval_codecs() {
  static const std::vector<std::string> names = {"f16",    "q8_0",  "fp8",  "q4_0",   "q8_0h", "q4_0h",
                                                 "turbo3", "turbo4", "rht3", "rht4",   "rotor3", "iso3",
                                                 "planar3", "turbo3p", "tq2.5", "tq3", "tq3.5", "tq4", "tq4.25"};
  return names;
}

std::vector<CachePlan> make_plans(const std::vector<std::string>& codecs,
                                  const std::vector<std::string>& k_codecs,
                                  const std::vector<std::string>& v_codecs,
                                  const std::vector<int>& keep_layers, const std::string& keep_codec,
                                  int n_layers) {
  auto check = [](const std::string& name) {
    if (!find_codec(name) && !find_preset(name))
      throw Error("unknown codec '" + name + "'; known: " + codec_names() + "; calibrated presets: " + preset_names());
  };
  std::vector<CachePlan> plans;
  if (!k_codecs.empty() || !v_codecs.empty()) {
    if (!codecs.empty()) throw Error("give either --codecs or --k/--v, not both");
    const std::vector<std::string> ks = k_codecs.empty() ? std::vector<std::string>{"f16"} : k_codecs;
    const std::vector<std::string> vs = v_codecs.empty() ? std::vector<std::string>{"f16"} : v_codecs;
    for (const auto& k : ks)
      for (const auto& v : vs) plans.push_back(CachePlan{k, v, {}});
  } else {
    for (const auto& c : codecs.empty() ? default_eval_codecs() : codecs) plans.push_back(CachePlan{c, c, {}});
  }
  if (!keep_layers.empty()) check(keep_codec);
  for (CachePlan& p : plans) {
    check(p.k_codec);
    check(p.v_codec);
    if (p.is_f16()) continue;
    for (int l : keep_layers) {
      const int layer = l < 0 ? n_layers + l : l;
      if (layer < 0 || layer >= n_layers)
        throw Error("--keep-layers: layer " + std::to_string(l) + " outside a model of " +
                    std::to_string(n_layers) + " layers");
      p.layer_codecs[layer] = {keep_codec, keep_codec};
    }
  }
  return plans;
}

}  // namespace tq
