// attach_preset_codecs: the one place a cache configuration that names a calibrated preset
// gets its codecs (the C API, the Python package, tq run / bench model, the eval).
#include <memory>
#include <string>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"

namespace tq {

namespace {

// The one preset a configuration names, or null; tq::Error naming both places for two.
const CodecSpec* named_preset(const KvCacheConfig& config) {
  const CodecSpec* found = nullptr;
  std::string found_at;
  auto see = [&](const std::string& name, const std::string& at) {
    const CodecSpec* p = find_preset(name);
    if (!p) return;
    if (found && found != p)
      throw Error("KvCache: " + found_at + " '" + std::string(found->name) + "' and " + at + " '" + name +
                  "' are two calibrated presets; a cache takes one");
    if (!found) found_at = at;
    found = p;
  };
  see(config.k_codec, "k_codec");
  see(config.v_codec, "v_codec");
  for (const auto& [layer, kv] : config.layer_codecs) {
    see(kv.first, "layer " + std::to_string(layer) + " K");
    see(kv.second, "layer " + std::to_string(layer) + " V");
  }
  return found;
}

}  // namespace

std::shared_ptr<const CalibratedCodecs> PresetCodecsMemo::get(const KvProfile& profile, const CodecSpec& preset,
                                                              const CalibrationOptions& options) {
  for (const Entry& e : built_)
    if (e.preset == &preset && e.options == options) return e.codecs;
  built_.push_back({&preset, options, std::make_shared<const CalibratedCodecs>(build_calibrated(profile, preset, options))});
  return built_.back().codecs;
}

void attach_preset_codecs(KvCacheConfig& config, const KvProfile* profile, const CalibrationOptions& options,
                          std::string_view profile_hint, PresetCodecsMemo* memo) {
  const CodecSpec* preset = named_preset(config);
  if (!preset) return;
  if (!profile)
    throw Error("KvCache: '" + std::string(preset->name) + "' is a calibrated preset, built per model: " +
                std::string(profile_hint));
  auto codecs = memo ? memo->get(*profile, *preset, options)
                     : std::make_shared<const CalibratedCodecs>(build_calibrated(*profile, *preset, options));
  config.sink_tokens = codecs->sink_tokens;
  config.calibrated = std::move(codecs);
}

}  // namespace tq
