// Calibrated presets from a profile (kv_profile.h). Per layer, KV head and side:
//   1. statistics after RoPE, averaged over positions [0, P) in closed form;
//   2. the error metric A (keys: E[q qᵀ], the score error of a key error e is eᵀAe;
//      values: W_oᵀW_o, the output error) and the centred data covariance C;
//   3. whitening T = A^½ and the eigenbasis U of T C T (eigenvalues λ): in y = Uᵀ T (x − μ)
//      the metric is plain ‖e‖² and the coordinates are uncorrelated with variances λ;
//   4. groups of consecutive coordinates with widths chosen by dynamic programming
//      (reverse water-filling with whole bits and the per-group norm counted) on the
//      layer's mean spectrum, so every head of the layer has the same record size;
//   5. a seeded Haar rotation inside each coded group, so its coordinates follow the
//      law the Lloyd–Max levels are made for.
// The map is P = R Uᵀ T (scaled so E‖y‖² = d); queries use P⁻ᵀ = R Uᵀ T⁻¹ (scaled back).
#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>

#include "turboquant/error.h"
#include "turboquant/kv_profile.h"
#include "turboquant/linalg.h"
#include "turboquant/rng.h"
#include "turboquant/rotation.h"

namespace tq {

namespace {

using linalg::Matrix;
using cd = std::complex<double>;

// Gaussian Lloyd–Max distortion per unit variance at 0..8 bits (0: the coordinate is dropped).
constexpr double kDistortion[9] = {1.0, 0.3634, 0.1175, 0.03454, 0.009497, 0.002499, 0.0006642, 0.0001724, 0.0000441};

// Mean of e^{iωp} over integer p in [0, P).
cd mean_phase(double w, int P) {
  const cd z = std::polar(1.0, w);
  if (std::abs(z - 1.0) < 1e-12) return 1.0;
  return (std::polar(1.0, w * P) - 1.0) / (static_cast<double>(P) * (z - 1.0));
}

// The rotary units of a head: pairs (first < second) and single unrotated coordinates.
struct Unit {
  int a, b;  // b < 0: single
  double theta;
};

std::vector<Unit> rope_units(const KvProfile& p, int layer) {
  std::vector<Unit> u;
  for (int i = 0; i < p.head_dim; ++i) {
    const int j = p.rope_partner[i];
    if (j == i) u.push_back({i, -1, 0.0});
    else if (i < j) u.push_back({i, j, p.rope_theta[layer][i]});
  }
  return u;
}

// E_p[R(p) S R(p)ᵀ] for the rotary map R(p) of the layer (S symmetric d x d).
Matrix rope_average(const Matrix& s, const std::vector<Unit>& units, int d, int P) {
  Matrix out(s.size());
  for (const Unit& A : units)
    for (const Unit& B : units) {
      auto at = [&](int i, int j) { return s[static_cast<size_t>(i) * d + j]; };
      auto put = [&](int i, int j, double v) { out[static_cast<size_t>(i) * d + j] = v; };
      if (A.b < 0 && B.b < 0) {
        put(A.a, B.a, at(A.a, B.a));
      } else if (A.b < 0) {  // row vector r ↦ r E[R(-θB p)]
        const cd m = mean_phase(-B.theta, P);
        const double c = m.real(), sn = m.imag();  // E[R(-θ p)] = [[c, -sn], [sn, c]]
        const double r0 = at(A.a, B.a), r1 = at(A.a, B.b);
        put(A.a, B.a, r0 * c + r1 * sn);
        put(A.a, B.b, -r0 * sn + r1 * c);
      } else if (B.b < 0) {  // column vector v ↦ E[R(θA p)] v
        const cd m = mean_phase(A.theta, P);
        const double c = m.real(), sn = m.imag();
        const double v0 = at(A.a, B.a), v1 = at(A.b, B.a);
        put(A.a, B.a, c * v0 - sn * v1);
        put(A.b, B.a, sn * v0 + c * v1);
      } else {  // 2x2 block as v ↦ m1 v + m2 v̄ on complex v = x + i y
        const double a = at(A.a, B.a), b = at(A.a, B.b), c = at(A.b, B.a), dd = at(A.b, B.b);
        const cd m1 = cd((a + dd) / 2, (c - b) / 2) * mean_phase(A.theta - B.theta, P);
        const cd m2 = cd((a - dd) / 2, (c + b) / 2) * mean_phase(A.theta + B.theta, P);
        put(A.a, B.a, m1.real() + m2.real());
        put(A.a, B.b, -m1.imag() + m2.imag());
        put(A.b, B.a, m1.imag() + m2.imag());
        put(A.b, B.b, m1.real() - m2.real());
      }
    }
  return out;
}

std::vector<double> rope_average_vec(const std::vector<double>& v, const std::vector<Unit>& units, int P) {
  std::vector<double> out(v.size());
  for (const Unit& u : units) {
    if (u.b < 0) {
      out[u.a] = v[u.a];
      continue;
    }
    const cd m = mean_phase(u.theta, P) * cd(v[u.a], v[u.b]);
    out[u.a] = m.real();
    out[u.b] = m.imag();
  }
  return out;
}

struct Eigenbasis {
  Matrix t, t_inv, u;      // whitening A^½, its inverse, eigenvectors of T C T (columns)
  std::vector<double> lambda;  // descending, >= 0
};

Eigenbasis whiten_and_diagonalize(const Matrix& a_in, const Matrix& c, int d, double ridge) {
  Matrix a = a_in;
  double tr = 0;
  for (int i = 0; i < d; ++i) tr += a[static_cast<size_t>(i) * d + i];
  const double add = std::max(ridge * tr / d, 1e-30);
  for (int i = 0; i < d; ++i) a[static_cast<size_t>(i) * d + i] += add;
  std::vector<double> w;
  Matrix v;
  linalg::eigen_symmetric(a, d, w, v);
  Eigenbasis e;
  e.t.assign(a.size(), 0);
  e.t_inv.assign(a.size(), 0);
  for (int k = 0; k < d; ++k) {
    const double s = std::sqrt(std::max(w[k], add)), si = 1 / s;
    for (int i = 0; i < d; ++i) {
      const double vik = v[static_cast<size_t>(i) * d + k];
      for (int j = 0; j < d; ++j) {
        const double p = vik * v[static_cast<size_t>(j) * d + k];
        e.t[static_cast<size_t>(i) * d + j] += s * p;
        e.t_inv[static_cast<size_t>(i) * d + j] += si * p;
      }
    }
  }
  const Matrix m = linalg::multiply(linalg::multiply(e.t, c, d), e.t, d);
  linalg::eigen_symmetric(m, d, e.lambda, e.u);
  for (double& l : e.lambda) l = std::max(l, 0.0);
  return e;
}

// Best layout of `lambda` (descending) in at most `budget` bytes. Returns the groups and
// the expected error Σ_g D(w_g) Σ_{i∈g} λ_i.
std::vector<QuantGroup> best_layout(const std::vector<double>& lambda, size_t budget, int granule, int min_bits,
                                    double* error) {
  const int d = static_cast<int>(lambda.size());
  const int n = d / granule;
  std::vector<double> pre(n + 1, 0);
  for (int k = 0; k < n; ++k) {
    pre[k + 1] = pre[k];
    for (int i = 0; i < granule; ++i) pre[k + 1] += lambda[k * granule + i];
  }
  const int B = static_cast<int>(budget);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> f(static_cast<size_t>(n + 1) * (B + 1), inf);
  struct Step { int from, bytes, bits; };
  std::vector<Step> how(f.size(), Step{-1, 0, 0});
  auto at = [&](int i, int b) -> size_t { return static_cast<size_t>(i) * (B + 1) + b; };
  for (int b = 0; b <= B; ++b) f[at(0, b)] = 0;
  for (int i = 0; i < n; ++i)
    for (int b = 0; b <= B; ++b) {
      const double base = f[at(i, b)];
      if (base == inf) continue;
      for (int j = i + 1; j <= n; ++j) {
        const double energy = pre[j] - pre[i];
        const int size = (j - i) * granule;
        for (int w = min_bits; w <= 8; ++w) {
          const int cost = w == 0 ? 0 : 2 + (size * w + 7) / 8;
          if (b + cost > B) break;
          const double v = base + kDistortion[w] * energy;
          if (v < f[at(j, b + cost)]) {
            f[at(j, b + cost)] = v;
            how[at(j, b + cost)] = {i, b, w};
          }
        }
      }
    }
  int best_b = 0;
  for (int b = 0; b <= B; ++b)
    if (f[at(n, b)] < f[at(n, best_b)]) best_b = b;
  if (error) *error = f[at(n, best_b)];
  std::vector<QuantGroup> groups;
  for (int i = n, b = best_b; i > 0;) {
    const Step s = how[at(i, b)];
    groups.push_back({(i - s.from) * granule, s.bits});
    i = s.from;
    b = s.bytes;
  }
  std::reverse(groups.begin(), groups.end());
  // Neighbours of equal width become one group (one norm instead of two).
  std::vector<QuantGroup> merged;
  for (const QuantGroup& g : groups) {
    if (!merged.empty() && merged.back().bits == g.bits && g.bits == 0) merged.back().size += g.size;
    else merged.push_back(g);
  }
  return merged;
}

std::shared_ptr<const AffineMap> make_map(const Eigenbasis& e, const std::vector<double>& mu,
                                          const std::vector<QuantGroup>& groups, int d, uint64_t seed) {
  // R: a Haar rotation inside each coded group (identity on dropped coordinates).
  Matrix r(static_cast<size_t>(d) * d, 0.0);
  int begin = 0, gi = 0;
  for (const QuantGroup& g : groups) {
    if (g.bits == 0 || g.size < 2) {
      for (int i = 0; i < g.size; ++i) r[static_cast<size_t>(begin + i) * d + begin + i] = 1;
    } else {
      auto rot = Rotation::make(RotationKind::dense, g.size, derive_seed(seed, static_cast<uint64_t>(gi)));
      std::vector<float> basis(g.size, 0.f), col(g.size);
      for (int j = 0; j < g.size; ++j) {
        std::fill(basis.begin(), basis.end(), 0.f);
        basis[j] = 1.f;
        rot->forward(basis.data(), col.data());
        for (int i = 0; i < g.size; ++i) r[static_cast<size_t>(begin + i) * d + begin + j] = col[i];
      }
    }
    begin += g.size;
    ++gi;
  }
  double total = 0;
  for (double l : e.lambda) total += l;
  const double scale = total > 0 ? std::sqrt(d / total) : 1.0;
  const Matrix rut = linalg::multiply(r, linalg::transpose(e.u, d), d);  // R Uᵀ
  const Matrix p = linalg::multiply(rut, e.t, d);
  const Matrix p_inv = linalg::multiply(e.t_inv, linalg::transpose(rut, d), d);  // T⁻¹ U Rᵀ
  auto m = std::make_shared<AffineMap>();
  m->dim = d;
  m->p.resize(p.size());
  m->p_inv.resize(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    m->p[i] = static_cast<float>(p[i] * scale);
    m->p_inv[i] = static_cast<float>(p_inv[i] / scale);
  }
  m->mu.assign(mu.begin(), mu.end());
  return m;
}

Matrix centred(const Matrix& second, const std::vector<double>& mu, int d) {
  Matrix c = second;
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) c[static_cast<size_t>(i) * d + j] -= mu[i] * mu[j];
  return c;
}

}  // namespace

double CalibratedCodecs::bits_per_value() const {
  if (k.empty() || k[0].maps.empty()) return 0;
  const double values = 2.0 * k.size() * k[0].maps.size() * k[0].maps[0]->dim;
  return 8.0 * static_cast<double>(bytes_per_token) / values;
}

CalibratedCodecs build_calibrated(const KvProfile& profile, const CodecSpec& preset, const CalibrationOptions& opt) {
  profile.check();
  if (preset.quant != QuantKind::grouped || preset.budget_bits <= 0)
    throw Error("build_calibrated: " + std::string(preset.name) + " is not a calibrated preset");
  const int d = profile.head_dim, H = profile.n_kv_heads;
  if (opt.granule < 2 || d % opt.granule != 0)
    throw Error("build_calibrated: head_dim " + std::to_string(d) + " is not a multiple of the group granule " +
                std::to_string(opt.granule));
  if (opt.context < 1) throw Error("build_calibrated: context must be >= 1 token");
  if (opt.sink_tokens < 0 || opt.min_bits < 0 || opt.min_bits > 8) throw Error("build_calibrated: bad options");
  // Everything counted: the sink store (f32 code-space K and V of sink_tokens positions)
  // is spread over the context, and the records get what is left of the budget.
  const int sinks = std::min(opt.sink_tokens, opt.context);
  const double record_bits = preset.budget_bits - 32.0 * sinks / opt.context;
  const size_t budget = static_cast<size_t>(std::max(0.0, std::floor(record_bits * d / 8.0)));
  CalibratedCodecs out;
  out.preset = &preset;
  out.sink_tokens = sinks;
  out.k.resize(profile.n_layers);
  out.v.resize(profile.n_layers);
  for (int l = 0; l < profile.n_layers; ++l) {
    const std::vector<Unit> units = rope_units(profile, l);
    for (int side = 0; side < 2; ++side) {
      std::vector<Eigenbasis> bases;
      std::vector<std::vector<double>> means;
      std::vector<double> mean_lambda(d, 0);
      for (int h = 0; h < H; ++h) {
        const KvProfile::Head& st = profile.head(l, h);
        Matrix a, c;
        std::vector<double> mu;
        if (side == 0) {
          a = rope_average(st.qq, units, d, opt.context);
          mu = rope_average_vec(st.k_mean, units, opt.context);
          c = centred(rope_average(st.kk, units, d, opt.context), mu, d);
        } else {
          a = st.v_weight;
          mu = st.v_mean;
          c = centred(st.vv, mu, d);
        }
        bases.push_back(whiten_and_diagonalize(a, c, d, opt.ridge));
        means.push_back(std::move(mu));
        for (int i = 0; i < d; ++i) mean_lambda[i] += bases.back().lambda[i] / H;
      }
      CalibratedSide& s = side == 0 ? out.k[l] : out.v[l];
      double err = 0, total = 0;
      s.groups = best_layout(mean_lambda, budget, opt.granule, opt.min_bits, &err);
      for (double x : mean_lambda) total += x;
      s.predicted = total > 0 ? err / total : 0;
      for (int h = 0; h < H; ++h)
        s.maps.push_back(make_map(bases[h], means[h], s.groups, d,
                                  derive_seed(opt.seed, static_cast<uint64_t>(l) * 65536u + h * 2u + side)));
      out.bytes_per_token += static_cast<size_t>(H) * GroupedMseQuantizer::layout_bytes(s.groups);
    }
  }
  return out;
}

}  // namespace tq
