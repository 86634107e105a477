// TurboQuant_mse: Lloyd–Max levels for the coordinate law of a uniform unit vector in
// R^dim, applied to y/‖y‖. Fractional widths split the coordinates into two runs of
// different widths (after a random rotation every coordinate has the same law, so
// which coordinates get the extra bit does not matter).
#include <cmath>
#include <cstring>

#include "half_fields.h"
#include "turboquant/packing.h"
#include "turboquant/quantizers.h"

namespace tq {

MseQuantizer::MseQuantizer(int dim, int bits_hi, int bits_lo, int n_hi, bool corrected_norm)
    : Quantizer(dim),
      n_hi_(n_hi),
      corrected_(corrected_norm),
      hi_(&lloyd_max_codebook(CoordinateLaw::sphere, dim, bits_hi)),
      lo_(&lloyd_max_codebook(CoordinateLaw::sphere, dim, bits_lo)),
      hi_bytes_(packed_bytes(n_hi, bits_hi)),
      lo_bytes_(packed_bytes(dim - n_hi, bits_lo)) {}

void MseQuantizer::encode(const float* y, uint8_t* record) const {
  double n2 = 0;
  for (int i = 0; i < dim_; ++i) n2 += double(y[i]) * y[i];
  const float norm = static_cast<float>(std::sqrt(n2));
  const float inv = detail::reciprocal_or_zero(norm);
  std::vector<uint8_t> idx(dim_);
  double c2 = 0;
  for (int i = 0; i < dim_; ++i) {
    const Codebook& cb = i < n_hi_ ? *hi_ : *lo_;
    idx[i] = static_cast<uint8_t>(cb.index_of(y[i] * inv));
    c2 += double(cb.levels[idx[i]]) * cb.levels[idx[i]];
  }
  const float stored = (corrected_ && norm > 0) ? static_cast<float>(norm / std::sqrt(c2)) : norm;
  detail::HalfFields fields;
  fields.store(record, stored);
  pack_bits(idx.data(), n_hi_, hi_->bits, record + hi_offset());
  pack_bits(idx.data() + n_hi_, dim_ - n_hi_, lo_->bits, record + lo_offset());
}

void MseQuantizer::indices(const uint8_t* record, uint8_t* idx) const {
  unpack_bits(record + hi_offset(), n_hi_, hi_->bits, idx);
  unpack_bits(record + lo_offset(), dim_ - n_hi_, lo_->bits, idx + n_hi_);
}

void MseQuantizer::decode(const uint8_t* record, float* y) const {
  std::vector<uint8_t> idx(dim_);
  indices(record, idx.data());
  const float norm = load_half(record);
  for (int i = 0; i < dim_; ++i) y[i] = norm * (i < n_hi_ ? hi_ : lo_)->levels[idx[i]];
}

float MseQuantizer::dot(const float* q, const uint8_t* record) const {
  std::vector<uint8_t> idx(dim_);
  indices(record, idx.data());
  float s = 0.f;
  for (int i = 0; i < dim_; ++i) s += q[i] * (i < n_hi_ ? hi_ : lo_)->levels[idx[i]];
  return load_half(record) * s;
}

void MseQuantizer::accumulate(const uint8_t* record, float weight, float* acc) const {
  std::vector<uint8_t> idx(dim_);
  indices(record, idx.data());
  const float w = weight * load_half(record);
  for (int i = 0; i < dim_; ++i) acc[i] += w * (i < n_hi_ ? hi_ : lo_)->levels[idx[i]];
}

}  // namespace tq
