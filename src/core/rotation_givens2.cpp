// PlanarQuant: one random angle per coordinate pair (2i, 2i+1).
#include <cmath>

#include "rotations_impl.h"
#include "turboquant/error.h"
#include "turboquant/rng.h"

namespace tq {

Givens2Rotation::Givens2Rotation(int dim, uint64_t seed, bool generate)
    : BlockRotation(RotationKind::givens2, dim, dim, seed) {
  if (!generate) return;
  Rng rng(seed);
  for (int i = 0; i < dim / 2; ++i)
    params_.push_back(static_cast<float>(6.283185307179586 * rng.uniform()));
  build_blocks();
}

void Givens2Rotation::build_blocks() {
  blocks_.clear();
  for (size_t i = 0; i < params_.size(); ++i) {
    const float c = std::cos(params_[i]), s = std::sin(params_[i]);
    blocks_.push_back({static_cast<int>(2 * i), 2, {c, -s, s, c}});
  }
}

void Givens2Rotation::load_params(std::span<const float> p) {
  if (p.size() != static_cast<size_t>(dim() / 2))
    throw Error("rotation data: givens2 parameter count mismatch");
  for (float a : p)
    if (!std::isfinite(a)) throw Error("rotation data: givens2 angle is not finite");
  params_.assign(p.begin(), p.end());
  build_blocks();
}

}  // namespace tq
