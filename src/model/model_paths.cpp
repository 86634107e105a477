// Short model names → the files scripts/setup_models.sh installs.
#include <cstdlib>
#include <filesystem>
#include <string>

#include "turboquant/error.h"
#include "turboquant/model.h"

namespace tq {
namespace {

struct NamedModel {
  const char* name;
  const char* file;
};

// Keep in sync with scripts/setup_models.sh.
constexpr NamedModel kNamedModels[] = {
    {"smollm2", "smollm2-135m-instruct-q4_1.gguf"},
    {"gemma3", "gemma-3-270m-q4_k_m.gguf"},
};

std::string model_dir() {
  if (const char* d = std::getenv("TQ_MODEL_DIR"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/turboquant/models";
}

}  // namespace

std::string resolve_model_path(const std::string& name_or_path) {
  for (const NamedModel& m : kNamedModels) {
    if (name_or_path != m.name) continue;
    const std::string path = model_dir() + "/" + m.file;
    if (!std::filesystem::exists(path)) {
      throw Error("model '" + name_or_path + "' is not installed (expected " + path +
                  "): run scripts/setup_models.sh (it honours $TQ_MODEL_DIR)");
    }
    return path;
  }
  if (!std::filesystem::exists(name_or_path)) {
    throw Error("model file " + name_or_path + " does not exist (named models: smollm2, gemma3)");
  }
  return name_or_path;
}

}  // namespace tq
