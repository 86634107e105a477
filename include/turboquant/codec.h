#pragma once
// The codec table: one row per cache codec a user can name, and Codec, the row
// instantiated for a head dimension and a seed. Every codec is a rotation followed
// by a quantizer that works in the rotated space; attention uses that directly:
// rotate the query once, score each record without decoding it, accumulate values
// in rotated space and rotate back once.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "turboquant/codebook.h"
#include "turboquant/rotation.h"

namespace tq {

enum class QuantKind : uint8_t {
  f16 = 0,    // fp16 per coordinate
  q8_0 = 1,   // llama.cpp q8_0: blocks of 32, fp16 scale + int8
  q4_0 = 2,   // llama.cpp q4_0: blocks of 32, fp16 scale + 4-bit offset-8 codes
  mse = 3,    // fp16 norm + Lloyd–Max indices (TurboQuant_mse)
  prod = 4,   // fp16 norm + (b−1)-bit Lloyd–Max + 1-bit QJL signs + fp16 residual norm
  group = 5,  // per group of g coordinates: fp16 min + fp16 step + b-bit codes
  grouped = 6,  // calibrated: groups of coordinates, each fp16 norm + its own Lloyd–Max width
  fp8 = 7,      // fp16 scale per vector + OCP FP8 E4M3 per coordinate
};

std::string_view quant_name(QuantKind kind);

// One row of the codec table.
struct CodecSpec {
  std::string_view name;
  QuantKind quant;
  RotationKind rotation;
  int bits = 0;      // mse: index bits of the first `hi_fraction` coordinates; prod: total
                     // bits incl. the QJL bit; group: code bits
  int bits_lo = 0;   // mse fractional widths: index bits of the remaining coordinates
  int group = 0;     // group: coordinates per group
  bool corrected_norm = false;  // mse: store ‖x‖/‖c[idx]‖ so the decoded vector keeps ‖x‖
  std::string_view summary;
  double budget_bits = 0;       // grouped presets: average bits per value, everything counted
};

// The calibrated presets (tq2.5 ... tq4): rows like the codec table's, but a preset is
// instantiated per model, layer, head and side from a calibration profile (kv_profile.h),
// never by name alone.
const std::vector<CodecSpec>& preset_table();
const CodecSpec* find_preset(std::string_view name);  // nullptr if unknown
std::string preset_names();

// A calibrated codec's affine map in front of its quantizer: codes are taken of
// y = P (x − μ), decoding gives x = P⁻¹ y + μ, and queries use P⁻ᵀ q (so q·x is exact up
// to the quantization of y). P is not orthogonal: it whitens the error metric and orders
// coordinates by importance (docs/EVAL.md, "Calibrated presets").
struct AffineMap {
  int dim = 0;
  std::vector<float> matrix;   // P: dim x dim, row-major
  std::vector<float> inverse;  // P⁻¹: dim x dim, row-major
  std::vector<float> mu;       // μ: dim
};

// P = I, μ = 0: a layout of groups on the raw coordinates (tests, benchmarks).
std::shared_ptr<const AffineMap> identity_affine_map(int dim);

struct QuantGroup;

const std::vector<CodecSpec>& codec_table();
const CodecSpec* find_codec(std::string_view name);  // nullptr if unknown
std::string codec_names();                            // "f16 q8_0 ..." for messages

class Quantizer;  // rotated-space quantizer (internal)

class Codec {
 public:
  // Throws tq::Error for an unknown name or a dimension the codec cannot handle.
  static Codec make(std::string_view name, int dim, uint64_t seed = 0);
  static Codec make(const CodecSpec& spec, int dim, uint64_t seed = 0);
  // A calibrated preset for one layer/head/side: `map` then groups of coordinates.
  static Codec make_calibrated(const CodecSpec& preset, std::shared_ptr<const AffineMap> map,
                               const std::vector<QuantGroup>& groups);

  const CodecSpec& spec() const { return *spec_; }
  std::string_view name() const { return spec_->name; }
  int dim() const { return dim_; }
  int code_dim() const;
  uint64_t seed() const { return seed_; }
  size_t record_bytes() const;        // bytes per encoded vector, everything included
  double bits_per_coord() const { return 8.0 * static_cast<double>(record_bytes()) / dim_; }
  size_t param_count() const;         // rotation + QJL parameters
  const Rotation& rotation() const { return *rotation_; }
  const Quantizer& quantizer() const { return *quantizer_; }
  const AffineMap* affine() const { return affine_.get(); }  // calibrated codecs only

  // Reference encode / decode of one vector. encode throws tq::Error on NaN/Inf input;
  // a zero vector encodes to a record that decodes to zero. fp16 fields beyond ±65504
  // are stored saturated and the vector counted in range_events() (range.h).
  void encode(const float* x, uint8_t* record) const;
  void decode(const uint8_t* record, float* x) const;

  // Attention primitives (reference). query_state holds query_state_floats() floats.
  size_t query_state_floats() const;
  void prepare_query(const float* q, float* query_state) const;
  // prepare_query of n queries at once (bit-identical results): a calibrated codec's P⁻ᵀ is
  // read once per block of queries instead of once per query (attention over RoPE frames
  // prepares a query per row and frame).
  void prepare_queries(int n, const float* const* q, float* const* query_states) const;
  float dot(const float* query_state, const uint8_t* record) const;  // ≈ <q, decode(record)>
  void accumulate(const uint8_t* record, float weight, float* acc) const;  // acc[code_dim]
  // Code space, where records live and attention accumulates: y[code_dim] from x[dim]
  // (the rotation, or the calibrated affine map) and back.
  void to_code(const float* x, float* y) const;
  void from_code(const float* y, float* x) const;
  // ≈ dot() for an exact code-space vector y (a sink token kept at full precision).
  float dot_code(const float* query_state, const float* y) const;
  void finish(const float* acc, float* out) const;  // out[dim] = inverse rotation of acc
                                                    // (acc: softmax-weighted, weights sum to 1)

 private:
  Codec() = default;
  const CodecSpec* spec_ = nullptr;
  int dim_ = 0;
  uint64_t seed_ = 0;
  std::shared_ptr<const Rotation> rotation_;
  std::shared_ptr<const Quantizer> quantizer_;
  std::shared_ptr<const AffineMap> affine_;
  // P and P⁻¹ by columns (detail::columns_of): encode and decode run their products with
  // lanes = outputs in the row-major summation order.
  std::shared_ptr<const std::vector<float>> matrix_cols_, inverse_cols_;
};

// Quantizer in rotated space (y = R x, ‖y‖ = ‖x‖). Exposed so fast paths (SIMD, CUDA)
// can read layout facts: offsets, codebooks, QJL matrix.
class Quantizer {
 public:
  virtual ~Quantizer() = default;
  virtual size_t record_bytes() const = 0;
  virtual size_t param_count() const { return 0; }
  virtual void encode(const float* y, uint8_t* record) const = 0;
  virtual void decode(const uint8_t* record, float* y) const = 0;
  virtual size_t query_state_floats() const { return dim_; }
  virtual void prepare_query(const float* qy, float* state) const;  // copies qy
  virtual float dot(const float* state, const uint8_t* record) const;  // default: decode + dot
  virtual void accumulate(const uint8_t* record, float weight, float* acc) const;
  int dim() const { return dim_; }  // the rotated (code) dimension

 protected:
  explicit Quantizer(int dim) : dim_(dim) {}
  int dim_;
};

}  // namespace tq
