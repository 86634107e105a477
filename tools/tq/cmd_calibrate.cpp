// tq calibrate: measures a model's calibration profile (kv_profile.h) on the built-in text
// and writes it, then prints what each calibrated preset becomes for this model.
#include <cstdio>
#include <string>

#include "args.h"
#include "commands.h"
#include "turboquant/error.h"
#include "turboquant/kv_profile_store.h"
#include "turboquant/quantizers.h"
#include "validate.h"

namespace tq::cli {

namespace {

constexpr const char* kUsage =
    "tq calibrate --model smollm2|gemma3|FILE.gguf [--profile FILE] [--context N] [--layouts] [--force] [--threads N]\n"
    "  Measures the statistics of the calibrated presets on a built-in text (never the eval text):\n"
    "  pre-RoPE query/key and value moments per layer and KV head, the output projection's\n"
    "  metric, and each layer's K and V sensitivity (KL with only that layer compressed).\n"
    "  Writes FILE (default ~/.cache/turboquant/profiles/<model>.<hash>.tqprof, the file tq eval\n"
    "  and tq run look for). An existing profile of the same model file is kept unless --force.\n"
    "  Then prints each preset's size for a cache of --context tokens (default 2048); --layouts\n"
    "  adds every layer's K and V record: bytes, then groups as coordinates@bits (h: fp16 norm,\n"
    "  else a log-byte norm).\n";

std::string describe(const CalibratedSide& s) {
  std::string out = std::to_string(GroupedMseQuantizer::layout_bytes(s.groups)) + " B:";
  for (const QuantGroup& g : s.groups)
    out += " " + std::to_string(g.size) + "@" + std::to_string(g.bits) + (g.bits > 0 && g.norm_bits == 16 ? "h" : "");
  return out;
}

void print_layouts(const CalibratedCodecs& cc) {
  for (size_t l = 0; l < cc.keys.size(); ++l)
    std::printf("    layer %2zu  K %-40s V %s\n", l, describe(cc.keys[l]).c_str(), describe(cc.values[l]).c_str());
}

}  // namespace

int cmd_calibrate(int argc, char** argv) {
  Args args(argc, argv, {"help", "force", "layouts"}, {"model", "profile", "context", "threads"});
  if (args.has("help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (!args.has("model")) throw Error(std::string("--model is required\n") + kUsage);
  const int context = int_in_range(args, "context", 2048, 16, 1 << 22);
  const int threads = int_in_range(args, "threads", 0, 0, 4096);
  const std::string model_path = resolve_model_path(args.get("model"));
  if (args.has("profile")) check_writable_path("profile", args.get("profile"));

  auto model = Model::load(model_path, threads);
  auto log = [](const std::string& s) { std::fprintf(stderr, "calibrate: %s\n", s.c_str()); };
  KvProfile profile;
  const uint64_t hash = model_file_hash(model_path);
  const std::string path = args.has("profile") ? args.get("profile") : default_profile_path(model_path, hash);
  if (args.has("force")) {
    profile = calibrate_profile(*model, model_path, log);
    save_profile(profile, path);
    log("saved " + path);
  } else {
    profile = load_or_calibrate_profile(*model, model_path, path, log);
  }
  CalibrationOptions opt;
  opt.context = context;
  std::printf("%s: %d layers x %d KV heads x %d, calibrated on %lld tokens; presets for %d-token caches:\n",
              profile.model_name.c_str(), profile.n_layers, profile.n_kv_heads, profile.head_dim,
              static_cast<long long>(profile.tokens), context);
  for (const auto& spec : preset_table()) {
    const CalibratedCodecs cc = build_calibrated(profile, spec, opt);
    std::printf("  %-6s %.3f bits/value (records %zu B/token, %d sink token%s)\n", std::string(spec.name).c_str(),
                cc.bits_per_value() + 32.0 * cc.sink_tokens / context, cc.bytes_per_token, cc.sink_tokens,
                cc.sink_tokens == 1 ? "" : "s");
    if (args.has("layouts")) print_layouts(cc);
  }
  return 0;
}

}  // namespace tq::cli
