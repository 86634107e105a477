// attach_preset_codecs: the one place a cache configuration that names a calibrated preset
// gets its codecs (the C API, the Python package).
#include <memory>
#include <string>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"

namespace tq {

void attach_preset_codecs(KvCacheConfig& config, const KvProfile* profile, const CalibrationOptions& options,
                          std::string_view profile_hint) {
  const CodecSpec* kp = find_preset(config.k_codec);
  const CodecSpec* vp = find_preset(config.v_codec);
  if (!kp && !vp) return;
  if (kp && vp && kp != vp)
    throw Error("KvCache: k_codec '" + config.k_codec + "' and v_codec '" + config.v_codec +
                "' are two calibrated presets; a cache takes one");
  const CodecSpec& preset = kp ? *kp : *vp;
  if (!profile)
    throw Error("KvCache: '" + std::string(preset.name) + "' is a calibrated preset, built per model: " +
                std::string(profile_hint));
  auto codecs = std::make_shared<const CalibratedCodecs>(build_calibrated(*profile, preset, options));
  config.sink_tokens = codecs->sink_tokens;
  config.calibrated = std::move(codecs);
}

}  // namespace tq
