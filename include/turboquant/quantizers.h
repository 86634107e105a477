#pragma once
// Concrete rotated-space quantizers. Their record layouts are documented byte by byte
// in docs/FORMATS.md; fast paths (SIMD, CUDA) read the layout facts exposed here.
#include <vector>

#include "turboquant/blocks.h"
#include "turboquant/codec.h"

namespace tq {

namespace detail {
class HalfFields;  // src/core/half_fields.h: saturating fp16 stores, counted per record
}

// [fp16 norm][hi codes: n_hi x bits_hi, packed][lo codes: (dim − n_hi) x bits_lo, packed]
// Integer widths have n_hi = dim. With corrected_norm the stored norm is ‖y‖/‖c[idx]‖.
class MseQuantizer final : public Quantizer {
 public:
  MseQuantizer(int dim, int bits_hi, int bits_lo, int n_hi, bool corrected_norm);
  size_t record_bytes() const override { return 2 + hi_bytes_ + lo_bytes_; }
  void encode(const float* y, uint8_t* record) const override;
  void decode(const uint8_t* record, float* y) const override;
  float dot(const float* q, const uint8_t* record) const override;
  void accumulate(const uint8_t* record, float weight, float* acc) const override;

  int n_hi() const { return n_hi_; }
  const Codebook& hi() const { return *hi_; }
  const Codebook& lo() const { return *lo_; }
  size_t hi_offset() const { return 2; }
  size_t lo_offset() const { return 2 + hi_bytes_; }
  bool corrected_norm() const { return corrected_; }
  // Level index of every coordinate, in order.
  void indices(const uint8_t* record, uint8_t* idx) const;

 private:
  int n_hi_;
  bool corrected_;
  const Codebook* hi_;
  const Codebook* lo_;
  size_t hi_bytes_, lo_bytes_;
};

// [fp16 norm][fp16 residual norm γ][(bits−1)-bit Lloyd–Max codes][dim sign bits of S r]
// Inner products: n·(<q, c[idx]> + γ·√(π/2)/dim · <S q, sign(S r)>), unbiased over S.
// The query state is [q (dim)][S q (dim)].
class ProdQuantizer final : public Quantizer {
 public:
  ProdQuantizer(int dim, int bits, uint64_t seed);
  size_t record_bytes() const override { return 4 + code_bytes_ + sign_bytes_; }
  size_t param_count() const override { return s_.size(); }
  void encode(const float* y, uint8_t* record) const override;
  void decode(const uint8_t* record, float* y) const override;
  size_t query_state_floats() const override { return 2ull * dim_; }
  void prepare_query(const float* qy, float* state) const override;
  float dot(const float* state, const uint8_t* record) const override;

  int mse_bits() const { return bits_ - 1; }
  const Codebook& codebook() const { return *cb_; }
  const std::vector<float>& qjl_matrix() const { return s_; }  // row-major dim x dim
  size_t code_offset() const { return 4; }
  size_t sign_offset() const { return 4 + code_bytes_; }

 private:
  int bits_;
  const Codebook* cb_;
  std::vector<float> s_;
  size_t code_bytes_, sign_bytes_;
};

// Per group of `group` coordinates: [fp16 min][fp16 step][codes: group x bits, packed].
class GroupQuantizer final : public Quantizer {
 public:
  GroupQuantizer(int dim, int bits, int group);
  size_t record_bytes() const override { return (dim_ / group_) * group_bytes(); }
  void encode(const float* y, uint8_t* record) const override;
  void decode(const uint8_t* record, float* y) const override;
  int bits() const { return bits_; }
  int group() const { return group_; }
  size_t group_bytes() const { return 4 + (static_cast<size_t>(group_) * bits_ + 7) / 8; }

 private:
  int bits_, group_;
};

// [fp16 x dim]
class F16Quantizer final : public Quantizer {
 public:
  explicit F16Quantizer(int dim) : Quantizer(dim) {}
  size_t record_bytes() const override { return 2ull * dim_; }
  void encode(const float* y, uint8_t* record) const override;
  void decode(const uint8_t* record, float* y) const override;
  float dot(const float* q, const uint8_t* record) const override;
  void accumulate(const uint8_t* record, float weight, float* acc) const override;
};

// llama.cpp's reference rounding (quantize_row_q8_0_ref / _q4_0_ref) for n_blocks blocks of
// 32 floats: the one implementation behind the q8_0/q4_0 codecs and the GGUF writer. A scale
// beyond fp16's range stores saturated (docs/FORMATS.md, "Range"), counted once per call.
void encode_q8_0_blocks(const float* x, size_t n_blocks, uint8_t* out);
void encode_q4_0_blocks(const float* x, size_t n_blocks, uint8_t* out);

// llama.cpp q8_0, per block of 32: [fp16 d][int8 q x 32]; x = d·q.
class Q8_0Quantizer final : public Quantizer {
 public:
  explicit Q8_0Quantizer(int dim) : Quantizer(dim) {}
  size_t record_bytes() const override { return (dim_ / 32) * sizeof(blocks::BlockQ8_0); }
  void encode(const float* y, uint8_t* record) const override;
  void decode(const uint8_t* record, float* y) const override;
};

// llama.cpp q4_0, per block of 32: [fp16 d][16 bytes: low nibble = x[j], high = x[j+16]];
// x = d·(q − 8).
class Q4_0Quantizer final : public Quantizer {
 public:
  explicit Q4_0Quantizer(int dim) : Quantizer(dim) {}
  size_t record_bytes() const override { return (dim_ / 32) * sizeof(blocks::BlockQ4_0); }
  void encode(const float* y, uint8_t* record) const override;
  void decode(const uint8_t* record, float* y) const override;
};

// OCP FP8 E4M3 (fp8.h) with one scale per vector: [fp16 s][D E4M3 codes]; y_i = s·e4m3(c_i).
// s is max|y_i|/448 rounded *up* to fp16, so no code saturates (max|y_i|/s <= 448) unless
// s itself does: beyond 65504 it stores 65504 and the vector counts as saturated. Codes
// are the E4M3 rounding (nearest even) of y_i·(1/s), from the stored s.
class Fp8Quantizer final : public Quantizer {
 public:
  explicit Fp8Quantizer(int dim) : Quantizer(dim) {}
  size_t record_bytes() const override { return 2ull + dim_; }
  void encode(const float* y, uint8_t* record) const override;
  void decode(const uint8_t* record, float* y) const override;
  float dot(const float* q, const uint8_t* record) const override;
  void accumulate(const uint8_t* record, float weight, float* acc) const override;
  size_t code_offset() const { return 2; }
  // The stored scale for a vector of largest magnitude amax, as fp16 bits; sets
  // `saturated` when amax/448 is beyond 65504.
  static uint16_t scale_bits(float amax, bool& saturated);
};

}  // namespace tq

namespace tq {

// Calibrated groups: consecutive runs of coordinates, each with its own width (0–8 bits).
// Per group of width > 0: [corrected norm ‖y_g‖/‖c[idx_g]‖][codes: size x bits, packed];
// the norm is fp16 (norm_bits 16) or one byte on a log scale around √size (norm_bits 8:
// code c > 0 is √size · 2^((c − 128)/16), 0 is zero; the calibrated map scales each group
// to E‖y_g‖² = size, so the byte covers 2^±8 of a group's typical norm in steps of 4.4%).
// A width-0 group stores nothing and decodes to zeros. Levels are Lloyd–Max for one
// coordinate of a uniform unit vector in R^size (the calibrated transform rotates each
// group at random, so its coordinates follow that law). The query state is [q (dim)][c]:
// dot adds the constant c, which the codec sets to q·μ for its mean offset.
struct QuantGroup {
  int size = 0;
  int bits = 0;
  int norm_bits = 16;  // 16 (fp16) or 8 (log byte)
};

class GroupedMseQuantizer final : public Quantizer {
 public:
  GroupedMseQuantizer(int dim, std::vector<QuantGroup> groups);  // tq::Error on a bad layout
  size_t record_bytes() const override { return record_bytes_; }
  void encode(const float* y, uint8_t* record) const override;
  void decode(const uint8_t* record, float* y) const override;
  size_t query_state_floats() const override { return dim_ + 1; }
  void prepare_query(const float* qy, float* state) const override;
  float dot(const float* state, const uint8_t* record) const override;
  void accumulate(const uint8_t* record, float weight, float* acc) const override;

  const std::vector<QuantGroup>& groups() const { return groups_; }
  // Bytes a layout takes per vector (norm + packed codes per coded group).
  static size_t layout_bytes(const std::vector<QuantGroup>& groups);
  // Mean ‖y − ŷ‖²/‖y‖² of one group of i.i.d. Gaussian coordinates as encode() codes it
  // (measured once per argument set, cached; 1 for a dropped group).
  static double expected_distortion(int size, int bits, int norm_bits);

  // Layout facts for the fast paths: one run per group, in coordinate order.
  struct Run {
    int begin, size, bits, norm_bytes;
    size_t offset;             // of the norm; codes follow
    const Codebook* codebook;  // null for width 0
  };
  const std::vector<Run>& runs() const { return runs_; }
  // A log-byte norm is √size · log_norm_factor(code); code 0 gives 0.
  static float log_norm_factor(int code);

 private:
  float load_norm(const Run& r, const uint8_t* record) const;
  void store_norm(const Run& r, float norm, uint8_t* record, detail::HalfFields& fields) const;
  std::vector<QuantGroup> groups_;
  std::vector<Run> runs_;
  size_t record_bytes_ = 0;
};

}  // namespace tq
