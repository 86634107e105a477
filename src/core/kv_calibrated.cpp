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
// The map is P = S R Uᵀ T (S scales each coded group to E‖y_g‖² = its size); queries use
// P⁻ᵀ = S⁻¹ R Uᵀ T⁻¹.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <limits>

#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif

#include "file_frame.h"
#include "turboquant/codebook.h"
#include "turboquant/error.h"
#include "turboquant/kv_profile.h"
#include "turboquant/linalg.h"
#include "turboquant/quant_traits.h"
#include "turboquant/rng.h"
#include "turboquant/rotation.h"

namespace tq {

namespace {

using linalg::Matrix;
using cd = std::complex<double>;

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

// Best layouts of `lambda` (descending) for every budget up to `max_bytes`, by dynamic
// programming over granules: error(b) = min Σ_g D(w_g) Σ_{i∈g} λ_i within b bytes.
class LayoutTable {
 public:
  LayoutTable(const std::vector<double>& lambda, int max_bytes, int granule, int min_bits)
      : n_(static_cast<int>(lambda.size()) / granule), B_(max_bytes), granule_(granule),
        f_(static_cast<size_t>(n_ + 1) * (B_ + 1), kInf), how_(f_.size()) {
    // Relative error of a group of k granules at w bits with a byte (n = 0) or fp16 (n = 1) norm,
    // as the encoder makes it.
    std::vector<double> distortion(static_cast<size_t>(n_ + 1) * 18);  // [granules][bits][norm]
    for (int k = 1; k <= n_; ++k)
      for (int w = std::max(min_bits, 1); w <= 8; ++w)
        for (int n = 0; n < 2; ++n)
          distortion[static_cast<size_t>(k) * 18 + w * 2 + n] =
              GroupedMseQuantizer::expected_distortion(k * granule, w, n == 0 ? 8 : 16);
    std::vector<double> pre(n_ + 1, 0);
    for (int k = 0; k < n_; ++k) {
      pre[k + 1] = pre[k];
      for (int i = 0; i < granule; ++i) pre[k + 1] += lambda[k * granule + i];
    }
    f_[at(0, 0)] = 0;
    for (int i = 0; i < n_; ++i)
      for (int b = 0; b <= B_; ++b) {
        const double base = f_[at(i, b)];
        if (base == kInf) continue;
        for (int j = i + 1; j <= n_; ++j) {
          const double energy = pre[j] - pre[i];
          const int size = (j - i) * granule;
          for (int w = min_bits; w <= 8; ++w)
            for (int norm_bytes = 1; norm_bytes <= 2; ++norm_bytes) {
              if (w == 0 && norm_bytes == 2) break;
              const int cost = w == 0 ? 0 : norm_bytes + (size * w + 7) / 8;
              if (b + cost > B_) break;
              const double dw = w == 0 ? 1.0 : distortion[static_cast<size_t>(j - i) * 18 + w * 2 + norm_bytes - 1];
              const double v = base + dw * energy;
              if (v < f_[at(j, b + cost)]) {
                f_[at(j, b + cost)] = v;
                how_[at(j, b + cost)] = {i, b, w, norm_bytes * 8};
              }
            }
        }
      }
    best_.assign(B_ + 1, -1);  // best exact byte count <= b
    for (int b = 0; b <= B_; ++b) {
      best_[b] = b > 0 ? best_[b - 1] : -1;
      if (f_[at(n_, b)] < kInf && (best_[b] < 0 || f_[at(n_, b)] < f_[at(n_, best_[b])])) best_[b] = b;
    }
  }
  int max_bytes() const { return B_; }
  bool feasible(int b) const { return b >= 0 && b <= B_ && best_[b] >= 0; }
  double error(int b) const { return feasible(b) ? f_[at(n_, best_[b])] : kInf; }
  std::vector<QuantGroup> layout(int b) const {
    std::vector<QuantGroup> groups;
    for (int i = n_, bb = best_[b]; i > 0;) {
      const Step s = how_[at(i, bb)];
      groups.push_back({(i - s.from) * granule_, s.bits, s.bits > 0 ? s.norm_bits : 16});
      i = s.from;
      bb = s.bytes;
    }
    std::reverse(groups.begin(), groups.end());
    std::vector<QuantGroup> merged;  // neighbouring dropped runs become one
    for (const QuantGroup& g : groups) {
      if (!merged.empty() && merged.back().bits == 0 && g.bits == 0) merged.back().size += g.size;
      else merged.push_back(g);
    }
    return merged;
  }

 private:
  static constexpr double kInf = std::numeric_limits<double>::infinity();
  struct Step {
    int from = -1, bytes = 0, bits = 0, norm_bits = 16;
  };
  size_t at(int i, int b) const { return static_cast<size_t>(i) * (B_ + 1) + b; }
  int n_, B_, granule_;
  std::vector<double> f_;
  std::vector<Step> how_;
  std::vector<int> best_;
};

// Bytes per (layer, side) under one total: equal shares, or, with measured sensitivities
// η, the greedy descent of Σ η · error(b) / signal over the tables (largest error drop per
// byte first, looking a few bytes ahead past flat steps), capped near twice the share.
std::vector<int> allocate(const std::vector<LayoutTable>& tables, const std::vector<double>& weight, long long total) {
  const size_t n = tables.size();
  const int share = static_cast<int>(total / static_cast<long long>(n));
  std::vector<int> bytes(n, share);
  for (size_t i = 0; i < static_cast<size_t>(total % static_cast<long long>(n)); ++i) ++bytes[i];  // the remainder, one each
  bool weighted = false;
  for (double w : weight) weighted |= w > 0;
  if (!weighted) return bytes;
  long long left = total;
  for (size_t i = 0; i < n; ++i) {
    int b = 0;
    while (b <= tables[i].max_bytes() && !tables[i].feasible(b)) ++b;  // the smallest layout (min_bits everywhere)
    // None within the table (min_bits above the budget): the equal shares, which the
    // caller reports as infeasible.
    if (b > tables[i].max_bytes()) return allocate(tables, std::vector<double>(n, 0.0), total);
    bytes[i] = b;
    left -= b;
  }
  if (left < 0) return allocate(tables, std::vector<double>(n, 0.0), total);
  constexpr int kLookahead = 24;
  for (;;) {
    double best_gain = 0;
    size_t best_i = n;
    int best_to = 0;
    for (size_t i = 0; i < n; ++i) {
      const double e0 = weight[i] * tables[i].error(bytes[i]);
      for (int to = bytes[i] + 1; to <= std::min(bytes[i] + kLookahead, tables[i].max_bytes()); ++to) {
        if (to - bytes[i] > left) break;
        const double gain = (e0 - weight[i] * tables[i].error(to)) / (to - bytes[i]);
        if (gain > best_gain) {
          best_gain = gain;
          best_i = i;
          best_to = to;
        }
      }
    }
    if (best_i == n) break;
    left -= best_to - bytes[best_i];
    bytes[best_i] = best_to;
  }
  return bytes;
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
  // Each coded group scaled to E‖y_g‖² = size (the log-byte norms are relative to √size);
  // the smallest energies are floored so a direction calibration never saw is not blown up.
  double total = 0;
  for (double l : e.lambda) total += l;
  std::vector<double> scale(d, total > 0 ? std::sqrt(d / total) : 1.0);
  begin = 0;
  for (const QuantGroup& g : groups) {
    double energy = 0;
    for (int i = 0; i < g.size; ++i) energy += e.lambda[begin + i];
    energy = std::max(energy, 1e-6 * total * g.size / d);
    if (g.bits > 0 && energy > 0)
      for (int i = 0; i < g.size; ++i) scale[begin + i] = std::sqrt(g.size / energy);
    begin += g.size;
  }
  const Matrix rut = linalg::multiply(r, linalg::transpose(e.u, d), d);  // R Uᵀ
  const Matrix p = linalg::multiply(rut, e.t, d);
  const Matrix p_inv = linalg::multiply(e.t_inv, linalg::transpose(rut, d), d);  // T⁻¹ U Rᵀ
  auto m = std::make_shared<AffineMap>();
  m->dim = d;
  m->matrix.resize(p.size());
  m->inverse.resize(p.size());
  for (int i = 0; i < d; ++i)  // rows of p, columns of p_inv
    for (int j = 0; j < d; ++j) {
      m->matrix[static_cast<size_t>(i) * d + j] = static_cast<float>(p[static_cast<size_t>(i) * d + j] * scale[i]);
      m->inverse[static_cast<size_t>(j) * d + i] = static_cast<float>(p_inv[static_cast<size_t>(j) * d + i] / scale[i]);
    }
  m->mu.assign(mu.begin(), mu.end());
  return m;
}

// The tables and temporaries of build_calibrated are freed when it returns, but glibc keeps
// blocks of their size in its heap once its mmap threshold has grown past them: tq3 on
// Gemma 3 kept ~90 MiB more resident than f16 (419 against 306 MiB, over the 392 MiB
// budget of issue 12). malloc_trim hands the free pages back to the system.
void return_free_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

Matrix centred(const Matrix& second, const std::vector<double>& mu, int d) {
  Matrix c = second;
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) c[static_cast<size_t>(i) * d + j] -= mu[i] * mu[j];
  return c;
}

// Positions a stored key is turned by: within its RoPE frame, or anywhere in the context.
int key_positions(const CalibrationOptions& opt) {
  return opt.rope_range > 0 ? std::min(opt.rope_range, opt.context) : opt.context;
}

// The mean a head's map subtracts: keys' averaged over the positions like their moments.
std::vector<double> head_mean(const KvProfile& profile, int l, int h, int side, const std::vector<Unit>& units,
                              const CalibrationOptions& opt) {
  const KvProfile::Head& st = profile.head(l, h);
  return side == 0 ? rope_average_vec(st.k_mean, units, key_positions(opt)) : st.v_mean;
}

// One head's whitened eigenbasis for one side (keys: metric E[q qᵀ] and covariance after
// RoPE, averaged over the positions a stored key is turned by, with the queries' metric
// over the whole context, as queries anywhere after a key read it; values: W_oᵀW_o and
// their covariance).
Eigenbasis head_basis(const KvProfile& profile, int l, int h, int side, const std::vector<Unit>& units,
                      const CalibrationOptions& opt) {
  const KvProfile::Head& st = profile.head(l, h);
  const int d = profile.head_dim;
  const std::vector<double> mu = head_mean(profile, l, h, side, units, opt);
  if (side == 0)
    return whiten_and_diagonalize(rope_average(st.qq, units, d, opt.context),
                                  centred(rope_average(st.kk, units, d, key_positions(opt)), mu, d), d, opt.ridge);
  return whiten_and_diagonalize(st.v_weight, centred(st.vv, mu, d), d, opt.ridge);
}

std::string build_options_text(const CalibrationOptions& o) {
  char b[192];
  std::snprintf(b, sizeof b, "ridge %.17g, min_bits %d, granule %d, seed %llu, RoPE frames of %d", o.ridge, o.min_bits,
                o.granule, static_cast<unsigned long long>(o.seed), o.rope_range);
  return b;
}

}  // namespace

std::string calibration_difference(const CalibrationSource& saved, const CalibrationSource& now) {
  auto both = [](const std::string& field, const std::string& a, const std::string& b) {
    return field + " (saved " + a + ", now " + b + ")";
  };
  if (saved.preset != now.preset) return both("the preset", saved.preset, now.preset);
  if (saved.model_hash != now.model_hash)
    return both("the model the profile was measured on (file hash)", detail::hex64(saved.model_hash),
                detail::hex64(now.model_hash));
  if (saved.profile_hash != now.profile_hash)
    return both("the calibration profile", detail::hex64(saved.profile_hash), detail::hex64(now.profile_hash));
  const CalibrationOptions &a = saved.options, &b = now.options;
  if (a.context != b.context)
    return both("the context they were built for", std::to_string(a.context) + " tokens",
                std::to_string(b.context) + " tokens");
  if (a.sink_tokens != b.sink_tokens)
    return both("the sink tokens", std::to_string(a.sink_tokens), std::to_string(b.sink_tokens));
  if (!(a == b)) return both("the build options", build_options_text(a), build_options_text(b));
  return "";
}

double CalibratedCodecs::bits_per_value() const {
  if (keys.empty() || keys[0].maps.empty()) return 0;
  const double n_values = 2.0 * keys.size() * keys[0].maps.size() * keys[0].maps[0]->dim;
  return 8.0 * static_cast<double>(bytes_per_token) / n_values;
}

CalibratedCodecs build_calibrated(const KvProfile& profile, const CodecSpec& preset, const CalibrationOptions& options) {
  profile.check();
  CalibrationOptions opt = options;  // resolved (the source keeps them as given)
  if (opt.rope_range < 0) opt.rope_range = CalibrationOptions::kAutoRopeRangePerDim * profile.head_dim;
  if (!quant_traits(preset.quant).calibrated || preset.budget_bits <= 0)
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
  // Whole bytes per record, but the fraction is not lost: the total over all layers and
  // sides is what the allocation shares out.
  const double bytes_per_side = std::max(0.0, record_bits * d / 8.0);
  const long long total = static_cast<long long>(std::floor(bytes_per_side * 2 * profile.n_layers));
  CalibratedCodecs out;
  out.preset = &preset;
  out.sink_tokens = sinks;
  out.source = {std::string(preset.name), profile_hash(profile), profile.model_hash, options};
  out.keys.resize(profile.n_layers);
  out.values.resize(profile.n_layers);
  out.key_frames = RopeFrames(opt.rope_range, profile.rope_partner, profile.rope_theta);

  {  // the tables die here, before return_free_heap()
    // Per (layer, side): the layer's mean spectrum over its heads and its table of best
    // layouts; index = layer * 2 + side. Only the spectra are kept from this first pass:
    // the eigenbases (three d x d doubles per layer, side and KV head: 54 MiB on Gemma 3)
    // are computed again, one at a time, for the maps (deterministic: the same bases).
    struct SideModel {
      std::vector<double> lambda;
      double signal = 0;
    };
    const int L = profile.n_layers;
    std::vector<SideModel> models(2 * static_cast<size_t>(L));
    for (int l = 0; l < L; ++l) {
      const std::vector<Unit> units = rope_units(profile, l);
      for (int side = 0; side < 2; ++side) {
        SideModel& m = models[2 * l + side];
        m.lambda.assign(d, 0);
        for (int h = 0; h < H; ++h) {
          const Eigenbasis e = head_basis(profile, l, h, side, units, opt);
          for (int i = 0; i < d; ++i) m.lambda[i] += e.lambda[i] / H;
        }
        for (double x : m.lambda) m.signal += x;
        if (!std::isfinite(m.signal))
          throw Error("build_calibrated: layer " + std::to_string(l) + (side == 0 ? " K" : " V") +
                      ": the profile's statistics are too large (their spectrum overflows double)");
      }
    }
    const bool measured = !profile.k_sensitivity.empty() && !profile.v_sensitivity.empty();
    const int share = static_cast<int>(total / (2 * L));
    std::vector<LayoutTable> tables;
    std::vector<double> weight;
    for (int i = 0; i < 2 * L; ++i) {
      tables.emplace_back(models[i].lambda, measured ? 2 * share + 1 : share + 1, opt.granule, opt.min_bits);
      const double eta = measured ? (i % 2 == 0 ? profile.k_sensitivity : profile.v_sensitivity)[i / 2] : 0.0;
      weight.push_back(models[i].signal > 0 ? eta / models[i].signal : 0.0);
    }
    const std::vector<int> bytes = allocate(tables, weight, total);
    for (int l = 0; l < L; ++l) {
      const std::vector<Unit> units = rope_units(profile, l);
      for (int side = 0; side < 2; ++side) {
        const int i = 2 * l + side;
        CalibratedSide& s = side == 0 ? out.keys[l] : out.values[l];
        if (!tables[i].feasible(bytes[i]))
          throw Error("build_calibrated: " + std::string(preset.name) + " leaves " + std::to_string(bytes[i]) +
                      " bytes per vector at head_dim " + std::to_string(d) +
                      ", below the smallest layout (the sink store of " + std::to_string(sinks) + " token(s) takes " +
                      std::to_string(32.0 * sinks / opt.context) + " bits per value at a context of " +
                      std::to_string(opt.context) + " tokens)");
        s.groups = tables[i].layout(bytes[i]);
        s.predicted = models[i].signal > 0 ? tables[i].error(bytes[i]) / models[i].signal : 0;
        for (int h = 0; h < H; ++h)
          s.maps.push_back(make_map(head_basis(profile, l, h, side, units, opt), head_mean(profile, l, h, side, units, opt),
                                    s.groups, d, derive_seed(opt.seed, static_cast<uint64_t>(l) * 65536u + h * 2u + side)));
        out.bytes_per_token += static_cast<size_t>(H) * GroupedMseQuantizer::layout_bytes(s.groups);
      }
    }
  }
  return_free_heap();
  return out;
}

}  // namespace tq
