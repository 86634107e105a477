#include "turboquant/kv_profile_store.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "turboquant/error.h"
#include "turboquant/model.h"

namespace tq {

std::string default_profile_path(const std::string& model_path, uint64_t model_hash) {
  std::string dir;
  if (const char* d = std::getenv("TQ_PROFILE_DIR"); d && *d) dir = d;
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.cache/turboquant/profiles";
  else dir = ".";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(model_hash));
  return dir + "/" + std::filesystem::path(model_path).filename().string() + "." + hex + ".tqprof";
}

KvProfile calibrate_profile(Model& model, const std::string& model_path) {
  const Tokenizer& tok = model.tokenizer();
  KvProfile p = model.measure_kv_profile(tok.encode(calibration_text(), tok.add_bos_default()));
  p.model_hash = model_file_hash(model_path);
  return p;
}

KvProfile load_or_calibrate_profile(Model& model, const std::string& model_path, const std::string& profile_path,
                                    const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& s) { if (log) log(s); };
  const uint64_t hash = model_file_hash(model_path);
  const std::string path = profile_path.empty() ? default_profile_path(model_path, hash) : profile_path;
  if (std::filesystem::exists(path)) {
    KvProfile p = load_profile(path);
    if (p.model_hash == hash) {
      say("calibration profile: " + path);
      return p;
    }
    if (!profile_path.empty())
      throw Error("calibration profile '" + path + "' was measured on another model file (hash differs); "
                  "run `tq calibrate` for this model or drop --profile");
    say("calibration profile " + path + " is stale (model file changed): measuring again");
  }
  say("calibration profile: measuring on the built-in text (once per model) ...");
  KvProfile p = calibrate_profile(model, model_path);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  save_profile(p, path);
  say("calibration profile: saved " + path + " (" + std::to_string(p.tokens) + " tokens)");
  return p;
}

}  // namespace tq
