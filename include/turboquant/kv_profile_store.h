#pragma once
// Where a model's calibration profile lives and how it is made: `tq calibrate` writes it,
// `tq eval` and `tq run` reuse it, or measure it once when it is missing or stale.
#include <functional>
#include <string>

#include "turboquant/kv_profile.h"

namespace tq {

class Model;

// $TQ_PROFILE_DIR, else ~/.cache/turboquant/profiles: "<model file name>.<hash>.tqprof".
std::string default_profile_path(const std::string& model_path, uint64_t model_hash);

// The profile of `model` (loaded from `model_path`): read from `profile_path` (empty: the
// default path) when it exists and belongs to this model file, else measured on the
// built-in calibration text and saved there. Either way it is the profile as the file
// holds it, so codecs built from it now equal those every later run builds. `log`
// receives one line per step.
KvProfile load_or_calibrate_profile(Model& model, const std::string& model_path, const std::string& profile_path,
                                    const std::function<void(const std::string&)>& log = {});

// Measures a fresh profile of `model` on the built-in calibration text: the statistics,
// then each layer's K and V sensitivity (2 × n_layers forward passes over the text).
KvProfile calibrate_profile(Model& model, const std::string& model_path,
                            const std::function<void(const std::string&)>& log = {});

}  // namespace tq
