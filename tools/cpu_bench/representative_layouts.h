#pragma once
// Calibrated presets (tq2.5 ... tq4) have no fixed layout: calibration gives every model,
// layer and side its own. `tq bench cpu` times each preset on one representative K and V
// layout: SmolLM2-135M's layer 13 at head_dim 64 (`tq calibrate --model smollm2
// --layouts`), group sizes scaled with head_dim, behind identity maps (attention applies
// the map once per query and once per output, never per token).
#include <memory>
#include <string>

#include "turboquant/kv_profile.h"

namespace tq::bench {

// nullptr when `codec` is not a calibrated preset.
std::shared_ptr<const CalibratedCodecs> representative_calibrated(const std::string& codec, int head_dim,
                                                                  int n_layers, int n_kv_heads);
// "K 4@6 20@4 40@2, V 16@4 48@3" at head_dim 64 (size@bits, log-byte norms), or "".
std::string representative_layout_text(const std::string& codec);

}  // namespace tq::bench
