#include "turboquant/codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "mat_vec.h"
#include "turboquant/error.h"
#include "turboquant/quant_traits.h"
#include "turboquant/quantizers.h"
#include "turboquant/range.h"
#include "turboquant/rng.h"

namespace tq {

namespace {

// Sub-stream of the codec seed for the rotation (prod's QJL matrix takes stream 2,
// quant_traits.cpp).
constexpr uint64_t kRotationStream = 1;

}  // namespace

Codec Codec::make(std::string_view name, int dim, uint64_t seed) {
  const CodecSpec* spec = find_codec(name);
  if (!spec && find_preset(name))
    throw Error("codec '" + std::string(name) + "' is a calibrated preset: it needs the model's calibration profile");
  if (!spec) throw Error("unknown codec '" + std::string(name) + "'; known codecs: " + codec_names());
  return make(*spec, dim, seed);
}

Codec Codec::make(const CodecSpec& spec, int dim, uint64_t seed) {
  if (dim < 8 || dim > 1024)
    throw Error("codec " + std::string(spec.name) + ": head dimension " + std::to_string(dim) +
                " out of range [8, 1024]");
  Codec c;
  c.spec_ = &spec;
  c.dim_ = dim;
  c.seed_ = seed;
  try {
    c.rotation_ = Rotation::make(spec.rotation, dim, derive_seed(seed, kRotationStream));
  } catch (const Error& e) {
    throw Error("codec " + std::string(spec.name) + ": " + e.what());
  }
  const QuantTraits& row = quant_traits(spec.quant);
  if (!row.make)
    throw Error("codec " + std::string(spec.name) + ": is a calibrated preset: it is built per model from a "
                "calibration profile (tq calibrate), not by name");
  c.quantizer_ = row.make(spec, c.rotation_->code_dim(), seed);
  return c;
}

std::shared_ptr<const AffineMap> identity_affine_map(int dim) {
  auto map = std::make_shared<AffineMap>();
  map->dim = dim;
  map->matrix.assign(static_cast<size_t>(dim) * dim, 0.f);
  for (int i = 0; i < dim; ++i) map->matrix[static_cast<size_t>(i) * dim + i] = 1.f;
  map->inverse = map->matrix;
  map->mu.assign(dim, 0.f);
  return map;
}

Codec Codec::make_calibrated(const CodecSpec& preset, std::shared_ptr<const AffineMap> map,
                             const std::vector<QuantGroup>& groups) {
  if (!quant_traits(preset.quant).calibrated) throw Error("codec " + std::string(preset.name) + " is not a calibrated preset");
  const int d = map ? map->dim : 0;
  const size_t dd = static_cast<size_t>(d) * d;
  if (!map || d < 8 || d > 1024 || map->matrix.size() != dd || map->inverse.size() != dd || map->mu.size() != static_cast<size_t>(d))
    throw Error("codec " + std::string(preset.name) + ": malformed affine map");
  Codec c;
  c.spec_ = &preset;
  c.dim_ = d;
  c.rotation_ = Rotation::make(RotationKind::none, d, 0);
  c.quantizer_ = std::make_shared<GroupedMseQuantizer>(d, groups);
  c.matrix_cols_ = std::make_shared<const std::vector<float>>(detail::columns_of(map->matrix, d));
  c.inverse_cols_ = std::make_shared<const std::vector<float>>(detail::columns_of(map->inverse, d));
  c.affine_ = std::move(map);
  return c;
}

namespace {

// y_v = Mᵀ x_v for kQ vectors (M row-major d x d): rows of M scaled by x_v[i] and added, i
// ascending, so the lanes are the outputs, kColumns of each query's in registers while M's
// rows stream by once per block. The same sums for any kQ: a query's result does not depend
// on the block it is in (prepare_queries equals prepare_query bit for bit).
template <int kQ>
void mat_t_block(const float* m, int d, const float* const* x, float* const* y) {
  // Eight lanes as one value (GCC/Clang vector extension): the compiler vectorizes a plain
  // loop here across queries, with gathers, instead of across the outputs.
  typedef float Lanes __attribute__((vector_size(32)));
  constexpr int kColumns = 8;
  int j0 = 0;
  for (; j0 + kColumns <= d; j0 += kColumns) {
    Lanes acc[kQ];
    for (Lanes& a : acc) a = Lanes{};
    for (int i = 0; i < d; ++i) {
      Lanes row;
      std::memcpy(&row, m + static_cast<size_t>(i) * d + j0, sizeof row);
      for (int v = 0; v < kQ; ++v) acc[v] += row * x[v][i];
    }
    for (int v = 0; v < kQ; ++v) std::memcpy(y[v] + j0, &acc[v], sizeof acc[v]);
  }
  for (int j = j0; j < d; ++j)  // columns past the last whole group
    for (int v = 0; v < kQ; ++v) {
      float a = 0.f;
      for (int i = 0; i < d; ++i) a += m[static_cast<size_t>(i) * d + j] * x[v][i];
      y[v][j] = a;
    }
}

}  // namespace

void Codec::to_code(const float* x, float* y) const {
  if (!affine_) return rotation_->forward(x, y);
  std::vector<float> centered(dim_);
  for (int i = 0; i < dim_; ++i) centered[i] = x[i] - affine_->mu[i];
  detail::mat_vec_cols(matrix_cols_->data(), dim_, centered.data(), y);
}

float Codec::dot_code(const float* state, const float* y) const {
  float s = affine_ ? state[code_dim()] : 0.f;  // the calibrated codecs' q·μ
  for (int i = 0; i < code_dim(); ++i) s += state[i] * y[i];
  return s;
}

void Codec::from_code(const float* y, float* x) const {
  if (!affine_) return rotation_->inverse(y, x);
  detail::mat_vec_cols(inverse_cols_->data(), dim_, y, x);
  for (int i = 0; i < dim_; ++i) x[i] += affine_->mu[i];
}

int Codec::code_dim() const { return rotation_->code_dim(); }
size_t Codec::record_bytes() const { return quantizer_->record_bytes(); }
size_t Codec::param_count() const { return rotation_->param_count() + quantizer_->param_count(); }
size_t Codec::query_state_floats() const { return quantizer_->query_state_floats(); }

void Codec::encode(const float* x, uint8_t* record) const {
  for (int i = 0; i < dim_; ++i)
    if (!std::isfinite(x[i])) {
      detail::count_nonfinite(1);
      throw Error("codec " + std::string(name()) + ": input coordinate " + std::to_string(i) +
                  " is not finite (" + std::to_string(x[i]) + ")");
    }
  std::vector<float> y(code_dim());
  to_code(x, y.data());
  quantizer_->encode(y.data(), record);
}

void Codec::decode(const uint8_t* record, float* x) const {
  std::vector<float> y(code_dim());
  quantizer_->decode(record, y.data());
  from_code(y.data(), x);
}

void Codec::prepare_query(const float* q, float* state) const {
  if (affine_) return prepare_queries(1, &q, &state);
  std::vector<float> y(code_dim());
  rotation_->forward(q, y.data());
  quantizer_->prepare_query(y.data(), state);
}

void Codec::prepare_queries(int n, const float* const* q, float* const* states) const {
  if (!affine_) {
    for (int v = 0; v < n; ++v) prepare_query(q[v], states[v]);
    return;
  }
  // q·x = (P⁻ᵀ q)·y + q·μ: the constant rides in the state's last float.
  constexpr int kBlock = 8;
  const int d = dim_;
  std::vector<float> y(static_cast<size_t>(kBlock) * d), zero(d, 0.f);
  for (int v0 = 0; v0 < n; v0 += kBlock) {
    const int nb = std::min(kBlock, n - v0);
    const float* x[kBlock];
    float* out[kBlock];
    for (int v = 0; v < kBlock; ++v) {
      x[v] = v < nb ? q[v0 + v] : zero.data();  // a short block's spare lanes read zeros
      out[v] = y.data() + static_cast<size_t>(v) * d;
    }
    const float* m = affine_->inverse.data();
    if (nb > 4) mat_t_block<8>(m, d, x, out);
    else if (nb > 2) mat_t_block<4>(m, d, x, out);
    else if (nb == 2) mat_t_block<2>(m, d, x, out);
    else mat_t_block<1>(m, d, x, out);
    for (int v = 0; v < nb; ++v) {
      float* st = states[v0 + v];
      quantizer_->prepare_query(y.data() + static_cast<size_t>(v) * d, st);
      float c = 0.f;
      for (int i = 0; i < d; ++i) c += q[v0 + v][i] * affine_->mu[i];
      st[code_dim()] += c;
    }
  }
}

float Codec::dot(const float* state, const uint8_t* record) const {
  return quantizer_->dot(state, record);
}

void Codec::accumulate(const uint8_t* record, float weight, float* acc) const {
  quantizer_->accumulate(record, weight, acc);
}

// acc is a convex combination of decoded codes (softmax weights sum to 1), so adding μ once
// is exact for the affine map.
void Codec::finish(const float* acc, float* out) const { from_code(acc, out); }

// ---- Quantizer defaults: through decode -------------------------------------

void Quantizer::prepare_query(const float* qy, float* state) const {
  for (int i = 0; i < dim_; ++i) state[i] = qy[i];
}

float Quantizer::dot(const float* state, const uint8_t* record) const {
  std::vector<float> y(dim_);
  decode(record, y.data());
  float s = 0.f;
  for (int i = 0; i < dim_; ++i) s += state[i] * y[i];
  return s;
}

void Quantizer::accumulate(const uint8_t* record, float weight, float* acc) const {
  std::vector<float> y(dim_);
  decode(record, y.data());
  for (int i = 0; i < dim_; ++i) acc[i] += weight * y[i];
}

}  // namespace tq
