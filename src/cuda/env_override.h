#pragma once
// Experiment overrides of the kernels' automatic choices, read from the environment
// (TQ_CUDA_DECODE, TQ_CUDA_LAUNCH, TQ_CUDA_QUANTIZE; docs/CUDA.md). Never silent: an
// override in effect is said once on stderr, and an unknown value is a tq::Error.
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <utility>

#include "turboquant/error.h"

namespace tq::cuda::detail {

// E::auto_ when `var` is unset or empty, else the choice it names. `what` is the
// operation ("decode attention"), `field` the parameter that sets it per call.
template <class E>
E env_override(const char* var, const char* what, const char* field,
               std::initializer_list<std::pair<const char*, E>> choices) {
  const char* e = std::getenv(var);
  if (!e || !*e) return E::auto_;
  std::string names;
  for (const auto& [name, value] : choices) {
    if (name == std::string(e)) {
      std::fprintf(stderr, "turboquant: %s=%s is in effect: %s with auto_ runs %s (an experiment override; set %s "
                   "instead)\n", var, e, what, e, field);
      return value;
    }
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  throw Error(std::string(var) + "=" + e + " is not a choice for " + what + " (" + names + "; unset for automatic)");
}

}  // namespace tq::cuda::detail
