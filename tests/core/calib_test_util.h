#pragma once
// Shared by the calibration tests: dense double-precision helpers (inverse by Gauss–Jordan,
// products) and a random but complete calibration profile (KvProfileBuilder on correlated
// random q/k/v, adjacent RoPE pairs, identity value weight).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/kv_profile.h"
#include "turboquant/rng.h"

namespace tq::test {

using Mat = std::vector<double>;  // n x n row-major

inline Mat mat_mul(const Mat& a, const Mat& b, int n) {
  Mat c(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k)
      for (int j = 0; j < n; ++j) c[i * n + j] += a[i * n + k] * b[k * n + j];
  return c;
}

// Inverse by Gauss–Jordan elimination with partial pivoting (double precision).
inline Mat mat_inverse(Mat a, int n) {
  Mat inv(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) inv[i * n + i] = 1;
  for (int c = 0; c < n; ++c) {
    int piv = c;
    for (int r = c + 1; r < n; ++r)
      if (std::abs(a[r * n + c]) > std::abs(a[piv * n + c])) piv = r;
    for (int j = 0; j < n; ++j) {
      std::swap(a[c * n + j], a[piv * n + j]);
      std::swap(inv[c * n + j], inv[piv * n + j]);
    }
    const double d = a[c * n + c];
    for (int j = 0; j < n; ++j) {
      a[c * n + j] /= d;
      inv[c * n + j] /= d;
    }
    for (int r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r * n + c];
      if (f == 0) continue;
      for (int j = 0; j < n; ++j) {
        a[r * n + j] -= f * a[c * n + j];
        inv[r * n + j] -= f * inv[c * n + j];
      }
    }
  }
  return inv;
}

// Largest |(P · P_inv − I)_ij| of a float map, computed in double.
inline double map_identity_error(const AffineMap& m) {
  const int n = m.dim;
  double worst = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int k = 0; k < n; ++k) s += double(m.matrix[i * n + k]) * m.inverse[k * n + j];
      worst = std::max(worst, std::abs(s - (i == j ? 1.0 : 0.0)));
    }
  return worst;
}

// AffineMap with P = I + 0.3 G/√d (G Gaussian), its inverse in double, mu ~ N(0, mu_sd²).
inline std::shared_ptr<AffineMap> random_affine_map(Rng& rng, int d, double mu_sd = 0.5) {
  Mat p(static_cast<size_t>(d) * d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) p[i * d + j] = (i == j ? 1.0 : 0.0) + 0.3 * rng.gaussian() / std::sqrt(double(d));
  const Mat inv = mat_inverse(p, d);
  auto m = std::make_shared<AffineMap>();
  m->dim = d;
  m->matrix.assign(p.begin(), p.end());
  m->inverse.assign(inv.begin(), inv.end());
  m->mu.resize(d);
  for (float& x : m->mu) x = static_cast<float>(mu_sd * rng.gaussian());
  return m;
}

// Random correlated rows: x = mean + M z with a fixed random mixing M and decaying scales,
// so the moments have a spread spectrum (not white) like real K/V.
struct CorrelatedSource {
  int d;
  Mat mix;
  std::vector<double> mean;
  CorrelatedSource(Rng& rng, int d_, double mean_sd) : d(d_), mix(static_cast<size_t>(d_) * d_), mean(d_) {
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) mix[i * d + j] = rng.gaussian() * std::pow(0.85, j) / std::sqrt(double(d));
    for (double& m : mean) m = mean_sd * rng.gaussian();
  }
  void draw(Rng& rng, float* out) const {
    std::vector<double> z(d);
    for (double& x : z) x = rng.gaussian();
    for (int i = 0; i < d; ++i) {
      double s = mean[i];
      for (int j = 0; j < d; ++j) s += mix[i * d + j] * z[j];
      out[i] = static_cast<float>(s);
    }
  }
};

// Standard RoPE fields: adjacent pairs (2i, 2i+1) turning by base^(-2i/d) per position.
inline void fill_rope_and_weights(KvProfile& p) {
  const int d = p.head_dim;
  p.rope_partner.resize(d);
  for (int i = 0; i < d; ++i) p.rope_partner[i] = i ^ 1;
  p.rope_theta.assign(p.n_layers, std::vector<double>(d));
  for (int l = 0; l < p.n_layers; ++l)
    for (int i = 0; i < d; ++i) p.rope_theta[l][i] = std::pow(10000.0, -double(i / 2 * 2) / d);
  for (auto& h : p.heads) {
    h.v_weight.assign(static_cast<size_t>(d) * d, 0.0);
    for (int i = 0; i < d; ++i) h.v_weight[i * d + i] = 1.0;
  }
}

// A complete profile from KvProfileBuilder on `tokens` random rows per layer.
inline KvProfile random_profile(uint64_t seed, int n_layers, int n_heads, int n_kv_heads, int d, int tokens = 256) {
  Rng rng(seed);
  KvProfileBuilder b(n_layers, n_heads, n_kv_heads, d);
  for (int l = 0; l < n_layers; ++l) {
    CorrelatedSource qs(rng, d, 0.2), ks(rng, d, 1.0), vs(rng, d, 0.5);
    std::vector<float> q(static_cast<size_t>(tokens) * n_heads * d), k(static_cast<size_t>(tokens) * n_kv_heads * d),
        v(k.size());
    for (int r = 0; r < tokens * n_heads; ++r) qs.draw(rng, q.data() + static_cast<size_t>(r) * d);
    for (int r = 0; r < tokens * n_kv_heads; ++r) {
      ks.draw(rng, k.data() + static_cast<size_t>(r) * d);
      vs.draw(rng, v.data() + static_cast<size_t>(r) * d);
    }
    b.add(l, tokens, q.data(), k.data(), v.data());
  }
  KvProfile p = b.finish();
  p.model_hash = seed * 0x9e3779b97f4a7c15ull + 1;
  p.model_name = "random-profile";
  fill_rope_and_weights(p);
  return p;
}

}  // namespace tq::test
