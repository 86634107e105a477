#pragma once
// Where a model's calibration profile lives and how it is made: `tq calibrate` writes it,
// `tq eval` and `tq run` reuse it, or measure it once when it is missing or stale.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

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

// Measures a fresh profile of `model` on the built-in calibration text, continued by the
// model four times from different seeds: the statistics over the four texts, then each
// layer's K and V sensitivity over the first (2 × n_layers + 1 forward passes, a chunk of
// logits at a time).
KvProfile calibrate_profile(Model& model, const std::string& model_path,
                            const std::function<void(const std::string&)>& log = {});

namespace detail {

// A reference distribution kept small (the sensitivity passes hold one per position): its
// most likely tokens, until they hold at least 1 − tail_mass of the probability or max_top
// of them are kept, and every other token as one outcome.
struct TopTokens {
  std::vector<int32_t> id;
  std::vector<double> logp;  // log-probability of each kept token, descending
  double tail = 0;          // probability of all the others together
};
TopTokens top_tokens(const float* logits, int vocab, int max_top, double tail_mass);

// KL(reference || test) with both distributions coarsened to the reference's kept tokens and
// the rest as one outcome. It is at most the full KL, and short of it only by the tail's
// share (ref.tail times the KL between the two distributions inside the tail).
double coarse_kl(const TopTokens& ref, const float* test_logits, int vocab);

}  // namespace detail
}  // namespace tq
