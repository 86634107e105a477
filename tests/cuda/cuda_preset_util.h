#pragma once
// Calibrated presets in the CUDA tests: codecs built from a synthetic calibration profile
// (tests/core/calib_test_util.h), cached per (preset, head_dim, KV heads, sinks).
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "core/calib_test_util.h"
#include "cuda_test_util.h"
#include "turboquant/kv_profile.h"

namespace tq::cuda::testing {

inline std::shared_ptr<const CalibratedCodecs> calibrated(const std::string& preset, int d, int n_kv, int sinks = 0) {
  static std::map<std::tuple<std::string, int, int, int>, std::shared_ptr<const CalibratedCodecs>> cache;
  auto& slot = cache[{preset, d, n_kv, sinks}];
  if (!slot) {
    const KvProfile prof = test::random_profile(1000 + d + n_kv, 1, 8, n_kv, d);
    CalibrationOptions opt;
    opt.sink_tokens = sinks;
    slot = std::make_shared<const CalibratedCodecs>(build_calibrated(prof, *find_preset(preset), opt));
  }
  return slot;
}

// A one-layer cache of `preset` on both sides, blocks of 16 tokens, 4096 tokens.
inline KvCacheConfig preset_config(const std::string& preset, int d, int n_kv, int sinks = 0) {
  KvCacheConfig c = cache_config(preset, preset, d, n_kv, 16, 4096);
  c.calibrated = calibrated(preset, d, n_kv, sinks);
  c.sink_tokens = sinks;
  return c;
}

}  // namespace tq::cuda::testing
