// RotorQuant: each consecutive 3-dim chunk is rotated by the sandwich v -> R v R~ with
// a unit rotor R = exp(B/2) = s + b12 e12 + b13 e13 + b23 e23 (4 of the 8 multivector
// components). R is drawn uniformly on the unit 3-sphere of rotors, which makes the
// chunk rotation Haar on SO(3). Leftover coordinates: when dim % 3 == 2 the last pair
// gets a random 2-D rotation (one angle), when dim % 3 == 1 the last coordinate is
// left as is. (d = 128 = 42*3 + 2: 42 rotors and one angle, 169 parameters.)
#include <cmath>

#include "rotations_impl.h"
#include "turboquant/error.h"
#include "turboquant/rng.h"

namespace tq {

static int rotor_chunks(int dim) { return dim / 3; }
static size_t rotor_param_count(int dim) {
  return 4ull * rotor_chunks(dim) + (dim % 3 == 2 ? 1 : 0);
}

Rotor3Rotation::Rotor3Rotation(int dim, uint64_t seed, bool generate)
    : BlockRotation(RotationKind::rotor3, dim, dim, seed) {
  if (!generate) return;
  Rng rng(seed);
  params_.reserve(rotor_param_count(dim));
  for (int c = 0; c < rotor_chunks(dim); ++c) {
    double q[4], n2 = 0;
    for (double& v : q) {
      v = rng.gaussian();
      n2 += v * v;
    }
    const double inv = 1.0 / std::sqrt(n2);
    for (double v : q) params_.push_back(static_cast<float>(v * inv));
  }
  if (dim % 3 == 2) params_.push_back(static_cast<float>(6.283185307179586 * rng.uniform()));
  build_blocks();
}

Multivector3 Rotor3Rotation::rotor(int chunk) const {
  const float* p = &params_[4 * chunk];
  Multivector3 r;
  r.blade[0] = p[0];  // scalar
  r.blade[3] = p[1];  // e12
  r.blade[5] = p[2];  // e13
  r.blade[6] = p[3];  // e23
  return r;
}

void Rotor3Rotation::build_blocks() {
  blocks_.clear();
  const int chunks = rotor_chunks(dim());
  for (int c = 0; c < chunks; ++c) {
    const Multivector3 r = rotor(c), rr = reverse(r);
    Block b{3 * c, 3, {}};
    // Column j of the matrix is the sandwich of basis vector e_j.
    constexpr unsigned kVec[3] = {1, 2, 4};  // e1, e2, e3 bitmasks
    for (int j = 0; j < 3; ++j) {
      Multivector3 e;
      e.blade[kVec[j]] = 1.f;
      const Multivector3 img = geometric_product(geometric_product(r, e), rr);
      for (int i = 0; i < 3; ++i) b.m[i * 3 + j] = img.blade[kVec[i]];
    }
    blocks_.push_back(b);
  }
  const int rest = dim() - 3 * chunks;
  if (rest == 2) {
    const float a = params_.back();
    blocks_.push_back({3 * chunks, 2, {std::cos(a), -std::sin(a), std::sin(a), std::cos(a)}});
  } else if (rest == 1) {
    blocks_.push_back({3 * chunks, 1, {1.f}});
  }
}

void Rotor3Rotation::load_params(std::span<const float> p) {
  if (p.size() != rotor_param_count(dim()))
    throw Error("rotation data: rotor3 parameter count mismatch");
  params_.assign(p.begin(), p.end());
  for (int c = 0; c < rotor_chunks(dim()); ++c) {
    double n2 = 0;
    for (int k = 0; k < 4; ++k) n2 += double(params_[4 * c + k]) * params_[4 * c + k];
    if (!(std::fabs(n2 - 1.0) < 1e-4)) throw Error("rotation data: rotor3 rotor is not unit");
  }
  build_blocks();
}

}  // namespace tq
