// TurboQuant_prod: (b−1)-bit MSE codes plus 1-bit QJL signs of the residual. For a
// Gaussian row s, E[<s,q> sign(<s,r>)] = √(2/π) <q,r>/‖r‖, so the scaled sign term is
// an unbiased estimate of <q, r> and the whole inner product is unbiased.
#include <cmath>

#include "half_fields.h"
#include "turboquant/packing.h"
#include "turboquant/quantizers.h"
#include "turboquant/rng.h"

namespace tq {

static constexpr double kSqrtHalfPi = 1.2533141373155002512;  // √(π/2)

ProdQuantizer::ProdQuantizer(int dim, int bits, uint64_t seed)
    : Quantizer(dim),
      bits_(bits),
      cb_(&lloyd_max_codebook(CoordinateLaw::sphere, dim, bits - 1)),
      code_bytes_(packed_bytes(dim, bits - 1)),
      sign_bytes_(packed_bytes(dim, 1)) {
  Rng rng(seed);
  s_.resize(static_cast<size_t>(dim) * dim);
  for (float& v : s_) v = static_cast<float>(rng.gaussian());
}

void ProdQuantizer::encode(const float* y, uint8_t* record) const {
  double n2 = 0;
  for (int i = 0; i < dim_; ++i) n2 += double(y[i]) * y[i];
  const float norm = static_cast<float>(std::sqrt(n2));
  const float inv = detail::reciprocal_or_zero(norm);
  std::vector<uint8_t> idx(dim_), sgn(dim_);
  std::vector<float> r(dim_);
  double g2 = 0;
  for (int i = 0; i < dim_; ++i) {
    idx[i] = static_cast<uint8_t>(cb_->index_of(y[i] * inv));
    r[i] = y[i] * inv - cb_->levels[idx[i]];
    g2 += double(r[i]) * r[i];
  }
  if (norm == 0) g2 = 0;
  for (int j = 0; j < dim_; ++j) {
    const float* row = &s_[static_cast<size_t>(j) * dim_];
    float s = 0.f;
    for (int i = 0; i < dim_; ++i) s += row[i] * r[i];
    sgn[j] = s >= 0.f ? 1 : 0;
  }
  detail::HalfFields fields;
  fields.store(record, norm);
  fields.store(record + 2, static_cast<float>(std::sqrt(g2)));
  pack_bits(idx.data(), dim_, bits_ - 1, record + code_offset());
  pack_bits(sgn.data(), dim_, 1, record + sign_offset());
}

void ProdQuantizer::decode(const uint8_t* record, float* y) const {
  const float norm = load_half(record), gamma = load_half(record + 2);
  const float scale = static_cast<float>(kSqrtHalfPi / dim_) * gamma;
  for (int i = 0; i < dim_; ++i) y[i] = cb_->levels[read_code(record + code_offset(), i, bits_ - 1)];
  for (int j = 0; j < dim_; ++j) {  // y += scale · Sᵀ sign(S r)
    const float sj = read_code(record + sign_offset(), j, 1) ? scale : -scale;
    const float* row = &s_[static_cast<size_t>(j) * dim_];
    for (int i = 0; i < dim_; ++i) y[i] += sj * row[i];
  }
  for (int i = 0; i < dim_; ++i) y[i] *= norm;
}

void ProdQuantizer::prepare_query(const float* qy, float* state) const {
  for (int i = 0; i < dim_; ++i) state[i] = qy[i];
  for (int j = 0; j < dim_; ++j) {
    const float* row = &s_[static_cast<size_t>(j) * dim_];
    float s = 0.f;
    for (int i = 0; i < dim_; ++i) s += row[i] * qy[i];
    state[dim_ + j] = s;
  }
}

float ProdQuantizer::dot(const float* state, const uint8_t* record) const {
  const float norm = load_half(record), gamma = load_half(record + 2);
  float mse = 0.f, qjl = 0.f;
  for (int i = 0; i < dim_; ++i) mse += state[i] * cb_->levels[read_code(record + code_offset(), i, bits_ - 1)];
  for (int j = 0; j < dim_; ++j)
    qjl += read_code(record + sign_offset(), j, 1) ? state[dim_ + j] : -state[dim_ + j];
  return norm * (mse + static_cast<float>(kSqrtHalfPi / dim_) * gamma * qjl);
}

}  // namespace tq
