// Randomized Hadamard transform. Dimensions that are not a power of two are
// zero-padded to the next power of two n (code_dim = n): forward is then an isometry
// R^dim -> R^n, and inverse (its transpose) keeps the first dim coordinates.
#include <cmath>

#include "rotations_impl.h"
#include "turboquant/error.h"
#include "turboquant/rng.h"

namespace tq {

static int next_pow2(int d) {
  int n = 1;
  while (n < d) n <<= 1;
  return n;
}

// In-place unnormalized fast Walsh–Hadamard transform (Sylvester order).
static void fwht(float* z, int n) {
  for (int h = 1; h < n; h <<= 1)
    for (int i = 0; i < n; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const float a = z[j], b = z[j + h];
        z[j] = a + b;
        z[j + h] = a - b;
      }
}

RhtRotation::RhtRotation(int dim, uint64_t seed, const RhtOptions& opt, bool generate)
    : Rotation(RotationKind::rht, dim, next_pow2(dim), seed), opt_(opt) {
  const int n = code_dim();
  signs_.assign(opt.rounds, std::vector<float>(n, 1.f));
  perm_.resize(n);
  for (int i = 0; i < n; ++i) perm_[i] = i;
  if (!generate) return;
  Rng rng(seed);
  if (opt.permute)  // Fisher–Yates
    for (int i = n - 1; i > 0; --i) std::swap(perm_[i], perm_[rng.below(i + 1)]);
  for (auto& s : signs_)
    for (float& v : s) v = (rng.next_u64() >> 63) ? -1.f : 1.f;
}

void RhtRotation::forward(const float* x, float* y) const {
  const int n = code_dim();
  const float scale = 1.f / std::sqrt(static_cast<float>(n));
  for (int i = 0; i < n; ++i) {
    const int src = perm_[i];
    y[i] = src < dim() ? x[src] : 0.f;
  }
  for (const auto& s : signs_) {
    for (int i = 0; i < n; ++i) y[i] *= s[i];
    fwht(y, n);
    for (int i = 0; i < n; ++i) y[i] *= scale;
  }
}

void RhtRotation::inverse(const float* y, float* x) const {
  const int n = code_dim();
  const float scale = 1.f / std::sqrt(static_cast<float>(n));
  std::vector<float> z(y, y + n);
  for (auto it = signs_.rbegin(); it != signs_.rend(); ++it) {
    fwht(z.data(), n);  // H/sqrt(n) is symmetric and its own inverse
    for (int i = 0; i < n; ++i) z[i] *= scale * (*it)[i];
  }
  for (int i = 0; i < n; ++i)
    if (perm_[i] < dim()) x[perm_[i]] = z[i];
}

uint32_t RhtRotation::option_bits() const {
  return (opt_.permute ? 1u : 0u) | (static_cast<uint32_t>(opt_.rounds) << 1);
}

std::vector<float> RhtRotation::params() const {
  std::vector<float> p;
  for (const auto& s : signs_) p.insert(p.end(), s.begin(), s.end());
  if (opt_.permute)
    for (int v : perm_) p.push_back(static_cast<float>(v));
  return p;
}

void RhtRotation::load_params(std::span<const float> p) {
  const size_t n = code_dim();
  const size_t want = n * opt_.rounds + (opt_.permute ? n : 0);
  if (p.size() != want) throw Error("rotation data: rht parameter count mismatch");
  for (int r = 0; r < opt_.rounds; ++r)
    for (size_t i = 0; i < n; ++i) {
      const float v = p[r * n + i];
      if (v != 1.f && v != -1.f) throw Error("rotation data: rht sign is not ±1");
      signs_[r][i] = v;
    }
  if (opt_.permute) {
    std::vector<bool> seen(n, false);
    for (size_t i = 0; i < n; ++i) {
      const float v = p[opt_.rounds * n + i];
      const int k = static_cast<int>(v);
      if (v != static_cast<float>(k) || k < 0 || static_cast<size_t>(k) >= n || seen[k])
        throw Error("rotation data: rht permutation is not a permutation");
      seen[k] = true;
      perm_[i] = k;
    }
  }
}

}  // namespace tq
