#pragma once
// The real GGUF runner (tq::Model) behind the EvalModel interface of `tq eval`.
#include <memory>
#include <string>

#include "turboquant/eval.h"

namespace tq {

class Model;

// Wraps a loaded model (its KvCache sequences become EvalCaches).
std::unique_ptr<EvalModel> make_eval_model(std::unique_ptr<Model> model);

// "smollm2" / "gemma3" / a path, as resolve_model_path; threads <= 0: all. qk_balance:
// calibrate the Q/K balance (Model::enable_qk_balance) before any cache is made.
std::unique_ptr<EvalModel> load_eval_model(const std::string& name_or_path, int threads = 0,
                                           bool qk_balance = false);

}  // namespace tq
