#pragma once
// The real GGUF runner (tq::Model) behind the EvalModel interface of `tq eval`.
#include <functional>
#include <memory>
#include <string>

#include "turboquant/eval.h"
#include "turboquant/kv_cache.h"

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

// Where the caches live and the forward passes run when not on the CPU runner (tq eval
// --device cuda): caches of the same KvCacheConfig the CPU path builds.
class EvalDevice {
 public:
  virtual ~EvalDevice() = default;
  virtual std::string name() const = 0;  // as reports print it
  // A cache of `cfg` holding one empty sequence.
  virtual std::unique_ptr<EvalCache> new_cache(const KvCacheConfig& cfg) = 0;
  // As Model::forward over one of new_cache's caches; qk_balance: apply the model's Q/K
  // balance (off for calibrated caches, which carry their own key transform).
  virtual void forward(const int32_t* tokens, int n, EvalCache& cache, float* logits, bool all_logits,
                       bool qk_balance) = 0;
};

// From now on `model` (made by make_eval_model or load_eval_model) runs its caches on the
// device make(runner) returns, built from its loaded runner (weights, configuration, Q/K
// balance). Its forward passes then take no QkvObserver (attention fidelity reads the CPU
// runner's q/k/v): passing one is a tq::Error, as is a model of another kind.
void run_eval_on(EvalModel& model, const std::function<std::unique_ptr<EvalDevice>(Model&)>& make);

}  // namespace tq
