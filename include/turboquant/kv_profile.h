#pragma once
// Calibration profile of one model, and the calibrated presets built from it.
//
// A profile holds, per layer and KV head, the second moments the calibrated codecs need:
// queries (over the query heads that share the KV head) and keys before RoPE, values, the
// key and value means, and the value weight W_oᵀW_o of the output projection (the error
// metric of a value). RoPE makes post-RoPE statistics depend on position, so the profile
// keeps them position-free and build_calibrated() averages the rotary embedding over the
// positions a cache will hold, in closed form. Files are checksummed and keyed by a hash
// of the model file (docs/FORMATS.md, "Calibration profile").
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/quantizers.h"
#include "turboquant/rope_frame.h"

namespace tq {

struct KvCacheConfig;

struct KvProfile {
  uint64_t model_hash = 0;  // model_file_hash() of the model it was measured on
  std::string model_name;
  int n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t tokens = 0;  // calibration tokens
  // RoPE: partner[i] is the coordinate rotated with i (i itself when unrotated); the pair
  // (i, partner) with i < partner turns by theta[layer][i] radians per position.
  std::vector<int> rope_partner;
  std::vector<std::vector<double>> rope_theta;  // [layer][head_dim]
  struct Head {
    std::vector<double> qq, kk, vv;   // d x d means of q qᵀ (pre-RoPE), k kᵀ (pre-RoPE), v vᵀ
    std::vector<double> k_mean, v_mean;
    std::vector<double> v_weight;     // d x d: Σ over the group's query heads of W_o,hᵀ W_o,h
  };
  std::vector<Head> heads;  // [layer * n_kv_heads + kv_head]
  // Measured sensitivity per layer: KL on the calibration text when only that layer's K
  // (or V) is compressed by a probe codec, per unit of predicted distortion. Empty: all 1.
  std::vector<double> k_sensitivity, v_sensitivity;

  const Head& head(int layer, int kv_head) const { return heads.at(static_cast<size_t>(layer) * n_kv_heads + kv_head); }
  void check() const;  // tq::Error naming the first inconsistent field
};

// Accumulates a profile's statistics from a forward pass (pre-RoPE q, k; v).
class KvProfileBuilder {
 public:
  KvProfileBuilder(int n_layers, int n_heads, int n_kv_heads, int head_dim);
  // One layer's rows: q [n][n_heads][d], k and v [n][n_kv_heads][d].
  void add(int layer, int n, const float* q, const float* k, const float* v);
  // Sums -> means; tq::Error when a layer saw no tokens. The caller fills the rest. The
  // sums move into the profile (no second copy in memory): the builder is spent.
  KvProfile finish();

 private:
  int n_layers_, n_heads_, n_kv_heads_, head_dim_;
  std::vector<KvProfile::Head> sums_;
  std::vector<int64_t> tokens_;
};

// A few paragraphs of plain English in varied registers (narrative, technical, dialogue,
// numbers), written for this project: the default calibration text of the Q/K balance and
// of the KV profiles (tq calibrate, turboquant.hf.calibrate).
const char* calibration_text();

// FNV-1a 64 of a whole file (the model identity a profile is keyed by).
uint64_t model_file_hash(const std::string& path);

void save_profile(const KvProfile& p, const std::string& path);  // atomic: temp file + rename
KvProfile load_profile(const std::string& path);                 // tq::Error on a bad file
std::vector<uint8_t> serialize_profile(const KvProfile& p);
KvProfile deserialize_profile(const std::vector<uint8_t>& bytes);

// How a preset is built from a profile.
// Defaults measured on SmolLM2 at 1024 tokens, K-only KL of tq3 (docs/EVAL.md): dropping
// directions (min_bits 0) 0.123 vs 0.080 with min_bits 1; ridge 0.01 → 0.1: 0.080 → 0.075;
// RoPE averaged over 8192 positions for a 1024-token context 0.075, over 1024: 0.045.
struct CalibrationOptions {
  int context = 2048;     // positions a cache holds: RoPE is averaged over [0, context), and
                          // the sink store is counted per token at this length
  double ridge = 0.1;     // error metric A + ridge · tr(A)/d · I: directions calibration barely saw
  int min_bits = 1;       // no direction is dropped: the smallest estimates are the least reliable
  int sink_tokens = 1;    // leading positions kept exact (KvCacheConfig::sink_tokens)
  int granule = 4;        // group sizes are multiples of this
  uint64_t seed = 0;      // the group rotations
  // Keys in RoPE frames of this many positions (rope_frame.h); 0: off; < 0: automatic,
  // kAutoRopeRangePerDim × head_dim, so that preparing a query per frame (head_dim² products)
  // costs 1/32 of attention's 2 × head_dim per key. Measured on SmolLM2 (docs/EVAL.md).
  int rope_range = -1;
  static constexpr int kAutoRopeRangePerDim = 16;
  bool operator==(const CalibrationOptions&) const = default;
};

// FNV-1a 64 of serialize_profile(p): the bytes of the profile's file, so a profile loaded
// from a file and the one it was saved from hash alike.
uint64_t profile_hash(const KvProfile& p);

// What a preset's codecs were built from: build_calibrated with a profile of this hash and
// these options gives the same codecs again. Cache files (and so sessions) record it, and a
// loader rebuilds the codecs from it and refuses records made under any other.
struct CalibrationSource {
  std::string preset;         // "tq3"
  uint64_t profile_hash = 0;  // profile_hash() of the profile
  uint64_t model_hash = 0;    // KvProfile::model_hash: the model file the profile was measured on
  CalibrationOptions options;
  bool operator==(const CalibrationSource&) const = default;
};
// "" when equal, else what differs first (preset, model, profile, context, sink tokens, the
// other build options) with both values: "the calibration profile (saved 0x…, now 0x…)".
std::string calibration_difference(const CalibrationSource& saved, const CalibrationSource& now);

// One layer's calibrated codecs: shared group layout (fixed record size), maps per head.
struct CalibratedSide {
  std::vector<QuantGroup> groups;
  std::vector<std::shared_ptr<const AffineMap>> maps;  // per KV head
  double predicted = 0;  // expected weighted error (per unit of the layer's signal)
};

struct CalibratedCodecs {
  const CodecSpec* preset = nullptr;
  std::vector<CalibratedSide> keys, values;  // per layer
  size_t bytes_per_token = 0;        // K + V, all layers and KV heads
  int sink_tokens = 0;               // leading positions a cache keeps exact (KvCacheConfig)
  RopeFrames key_frames;             // keys are stored and queried in these frames
  CalibrationSource source;          // what build_calibrated built them from
  double bits_per_value() const;
};

// Builds every layer's K and V codecs for `preset` (find_preset) within its bit budget.
CalibratedCodecs build_calibrated(const KvProfile& profile, const CodecSpec& preset,
                                  const CalibrationOptions& options = {});

// Preset codecs already built, by preset and options (one profile): a caller that builds
// many caches of one model (the eval: a cache per plan and window) builds each set once.
// Not thread-safe.
class PresetCodecsMemo {
 public:
  std::shared_ptr<const CalibratedCodecs> get(const KvProfile& profile, const CodecSpec& preset,
                                              const CalibrationOptions& options);

 private:
  struct Entry {
    const CodecSpec* preset;
    CalibrationOptions options;
    std::shared_ptr<const CalibratedCodecs> codecs;
  };
  std::vector<Entry> built_;
};

// Gives a cache configuration the codecs of the preset it names (k_codec, v_codec or a
// layer override; one preset per cache), built from `profile` with `options` (or taken
// from `memo`), and the preset's sink tokens; leaves a configuration without a preset as
// it is. tq::Error when two places name different presets, or a preset is named with no
// profile (the message ends with `profile_hint`: how this caller's user passes one).
void attach_preset_codecs(KvCacheConfig& config, const KvProfile* profile, const CalibrationOptions& options,
                          std::string_view profile_hint, PresetCodecsMemo* memo = nullptr);

}  // namespace tq
