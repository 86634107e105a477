#pragma once
// Where the real models live (scripts/setup_models.sh): $TQ_MODEL_DIR, else
// ~/.cache/turboquant/models. Tests on them skip with a message when a file is absent.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace tq::testing {

inline constexpr const char* kSmolLM2File = "smollm2-135m-instruct-q4_1.gguf";
inline constexpr const char* kGemma3File = "gemma-3-270m-q4_k_m.gguf";

// The model's path, or "" when it is not installed.
inline std::string real_model_path(const char* file) {
  const char* dir = std::getenv("TQ_MODEL_DIR");
  const char* home = std::getenv("HOME");
  const std::string base = dir && *dir ? dir : std::string(home && *home ? home : ".") + "/.cache/turboquant/models";
  const std::string path = base + "/" + file;
  return std::filesystem::exists(path) ? path : "";
}

}  // namespace tq::testing

// Skips the current test when `path` is empty.
#define TQ_SKIP_IF_NO_MODEL(path, file) \
  if ((path).empty()) GTEST_SKIP() << (file) << " is not installed: run scripts/setup_models.sh (honours $TQ_MODEL_DIR)"
