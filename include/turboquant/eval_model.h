#pragma once
// The real GGUF runner (tq::Model) behind the EvalModel interface of `tq eval`.
#include <functional>
#include <memory>
#include <string>

#include "turboquant/eval.h"

namespace tq {

class Model;

// Wraps a loaded model (its KvCache sequences become EvalCaches).
std::unique_ptr<EvalModel> make_eval_model(std::unique_ptr<Model> model);

// "smollm2" / "gemma3" / a path, as resolve_model_path; threads <= 0: all. qk_balance:
// calibrate the Q/K balance (Model::enable_qk_balance) before any cache is made.
struct ProfileRequest {
  bool wanted = false;     // load or measure the calibration profile (calibrated presets)
  std::string path;        // empty: the default path (kv_profile_store.h)
  // The presets' group sizes are multiples of this (CalibrationOptions::granule); 0: its default.
  int granule = 0;
  std::function<void(const std::string&)> log;
};

std::unique_ptr<EvalModel> load_eval_model(const std::string& name_or_path, int threads = 0,
                                           bool qk_balance = false, const ProfileRequest& profile = {});

}  // namespace tq
