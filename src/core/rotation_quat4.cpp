// IsoQuant: each 4-dim chunk is a quaternion v. The full SO(4) form is
// v -> q_L v conj(q_R) (two unit quaternions, every rotation of R^4); the one-sided
// form v -> q_L v (isoclinic, half the parameters) is cheaper and covers only a
// 3-dimensional subgroup. Codec rows say which they use (iso* full, iso*f one-sided).
#include <cmath>

#include "rotations_impl.h"
#include "turboquant/error.h"
#include "turboquant/rng.h"

namespace tq {

namespace {

struct Quat {
  double w, x, y, z;
};

Quat mul(const Quat& a, const Quat& b) {  // Hamilton product
  return {a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
          a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
          a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
          a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w};
}
Quat conj(const Quat& a) { return {a.w, -a.x, -a.y, -a.z}; }

}  // namespace

Quat4Rotation::Quat4Rotation(int dim, uint64_t seed, bool one_sided, bool generate)
    : BlockRotation(one_sided ? RotationKind::quat4_left : RotationKind::quat4, dim, dim, seed),
      one_sided_(one_sided) {
  if (!generate) return;
  Rng rng(seed);
  const int per_chunk = one_sided ? 4 : 8;
  for (int c = 0; c < dim / 4; ++c)
    for (int q = 0; q < per_chunk / 4; ++q) {
      double v[4], n2 = 0;
      for (double& t : v) {
        t = rng.gaussian();
        n2 += t * t;
      }
      for (double t : v) params_.push_back(static_cast<float>(t / std::sqrt(n2)));
    }
  build_blocks();
}

void Quat4Rotation::build_blocks() {
  blocks_.clear();
  const int per_chunk = one_sided_ ? 4 : 8;
  for (int c = 0; c < dim() / 4; ++c) {
    const float* p = &params_[per_chunk * c];
    const Quat ql{p[0], p[1], p[2], p[3]};
    const Quat qr = one_sided_ ? Quat{1, 0, 0, 0} : Quat{p[4], p[5], p[6], p[7]};
    Block b{4 * c, 4, {}};
    for (int j = 0; j < 4; ++j) {
      Quat e{0, 0, 0, 0};
      (&e.w)[j] = 1.0;
      const Quat img = mul(mul(ql, e), conj(qr));
      for (int i = 0; i < 4; ++i) b.m[i * 4 + j] = static_cast<float>((&img.w)[i]);
    }
    blocks_.push_back(b);
  }
}

void Quat4Rotation::load_params(std::span<const float> p) {
  const size_t per_chunk = one_sided_ ? 4 : 8;
  if (p.size() != per_chunk * (dim() / 4))
    throw Error("rotation data: quat4 parameter count mismatch");
  for (size_t i = 0; i < p.size(); i += 4) {
    const double n2 = double(p[i]) * p[i] + double(p[i + 1]) * p[i + 1] +
                      double(p[i + 2]) * p[i + 2] + double(p[i + 3]) * p[i + 3];
    if (!(std::fabs(n2 - 1.0) < 1e-4)) throw Error("rotation data: quaternion is not unit");
  }
  params_.assign(p.begin(), p.end());
  build_blocks();
}

}  // namespace tq
