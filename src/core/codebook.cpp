// Lloyd–Max codebooks by numerical integration. The coordinate law is tabulated once
// as cumulative integrals of f, t·f and t²·f on a fine grid, so every cell moment in
// the Lloyd iteration is a difference of two interpolated values.
#include "turboquant/codebook.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "turboquant/error.h"

namespace tq {

namespace {

constexpr double kPi = 3.141592653589793238462643;

struct Tabulated {
  std::vector<double> t, m0, m1, m2;  // grid and cumulative moments (normalized mass)

  // Cumulative moments at x by linear interpolation on the grid. `hint` is a grid index
  // near x, updated to x's: the Lloyd iteration moves each boundary little between
  // iterations, so a search out from the last one reads a few cached entries where a
  // search over the whole 200,001-point grid missed the cache at every step. It finds
  // the same index as std::upper_bound, so the moments are the same to the bit.
  void at(double x, size_t& hint, double& c0, double& c1, double& c2) const {
    if (x <= t.front()) {
      c0 = c1 = c2 = 0;
      return;
    }
    if (x >= t.back()) {
      c0 = m0.back(), c1 = m1.back(), c2 = m2.back();
      return;
    }
    const size_t k = upper_bound_near(x, hint);  // t[k-1] <= x < t[k]
    hint = k;
    const double a = (x - t[k - 1]) / (t[k] - t[k - 1]);
    c0 = m0[k - 1] + a * (m0[k] - m0[k - 1]);
    c1 = m1[k - 1] + a * (m1[k] - m1[k - 1]);
    c2 = m2[k - 1] + a * (m2[k] - m2[k - 1]);
  }

 private:
  // std::upper_bound(t, x) for t.front() < x < t.back(), galloping out from `from`: the
  // first index whose t exceeds x lies in [lo, hi), found in log(distance) steps.
  size_t upper_bound_near(double x, size_t from) const {
    const size_t n = t.size();
    size_t lo, hi;
    from = std::clamp<size_t>(from, 1, n - 1);
    if (t[from] <= x) {  // the answer is past `from`
      size_t step = 1;
      lo = from + 1;
      while (lo + step < n && t[lo + step - 1] <= x) {
        lo += step;
        step *= 2;
      }
      hi = std::min(n, lo + step);
    } else {  // at or before `from`
      size_t step = 1;
      hi = from + 1;
      while (hi > step + 1 && t[hi - step - 1] > x) {
        hi -= step;
        step *= 2;
      }
      lo = hi > step + 1 ? hi - step - 1 : 1;
    }
    return std::upper_bound(t.begin() + lo, t.begin() + hi, x) - t.begin();
  }
};

// Trapezoid-rule cumulative moments for samples t_k with weights w_k per unit of the
// integration variable (spacing h).
Tabulated tabulate(const std::vector<double>& t, const std::vector<double>& w, double h) {
  Tabulated tab;
  tab.t = t;
  const size_t n = t.size();
  tab.m0.assign(n, 0);
  tab.m1.assign(n, 0);
  tab.m2.assign(n, 0);
  for (size_t k = 1; k < n; ++k) {
    const double a = w[k - 1], b = w[k], ta = t[k - 1], tb = t[k];
    tab.m0[k] = tab.m0[k - 1] + 0.5 * h * (a + b);
    tab.m1[k] = tab.m1[k - 1] + 0.5 * h * (a * ta + b * tb);
    tab.m2[k] = tab.m2[k - 1] + 0.5 * h * (a * ta * ta + b * tb * tb);
  }
  const double mass = tab.m0.back();
  for (size_t k = 0; k < n; ++k) {
    tab.m0[k] /= mass;
    tab.m1[k] /= mass;
    tab.m2[k] /= mass;
  }
  return tab;
}

Tabulated tabulate_law(CoordinateLaw law, int d) {
  constexpr int kSteps = 200000;
  std::vector<double> t(kSteps + 1), w(kSteps + 1);
  if (law == CoordinateLaw::sphere) {
    // Substitute t = sin θ: the density (1−t²)^((d−3)/2) dt becomes cos^(d−2) θ dθ,
    // smooth on [−π/2, π/2] even for d = 2, where the t-density is singular at ±1.
    const double h = kPi / kSteps;
    for (int k = 0; k <= kSteps; ++k) {
      const double th = -kPi / 2 + h * k;
      t[k] = std::sin(th);
      w[k] = std::pow(std::max(0.0, std::cos(th)), d - 2);
    }
    t.front() = -1.0;
    t.back() = 1.0;
    return tabulate(t, w, h);
  }
  const double sigma = 1.0 / std::sqrt(static_cast<double>(d));
  const double lo = -12 * sigma, h = 24 * sigma / kSteps;
  for (int k = 0; k <= kSteps; ++k) {
    t[k] = lo + h * k;
    w[k] = std::exp(-0.5 * (t[k] / sigma) * (t[k] / sigma));
  }
  return tabulate(t, w, h);
}

double quantile(const Tabulated& tab, double p) {
  const size_t k = std::lower_bound(tab.m0.begin(), tab.m0.end(), p) - tab.m0.begin();
  if (k == 0) return tab.t.front();
  if (k >= tab.t.size()) return tab.t.back();
  const double a = (p - tab.m0[k - 1]) / std::max(1e-300, tab.m0[k] - tab.m0[k - 1]);
  return tab.t[k - 1] + a * (tab.t[k] - tab.t[k - 1]);
}

Codebook lloyd_max(const Tabulated& tab, int bits) {
  const int L = 1 << bits;
  std::vector<double> c(L), b(L + 1);
  for (int i = 0; i < L; ++i) c[i] = quantile(tab, (i + 0.5) / L);
  b[0] = tab.t.front();
  b[L] = tab.t.back();
  double distortion = 0;
  std::vector<size_t> hint(L + 1, tab.t.size() / 2);  // grid index of each boundary
  for (int iter = 0; iter < 5000; ++iter) {
    for (int i = 1; i < L; ++i) b[i] = 0.5 * (c[i - 1] + c[i]);
    double change = 0;
    distortion = 0;
    double lo0, lo1, lo2;
    tab.at(b[0], hint[0], lo0, lo1, lo2);
    for (int i = 0; i < L; ++i) {
      double hi0, hi1, hi2;
      tab.at(b[i + 1], hint[i + 1], hi0, hi1, hi2);
      const double p0 = hi0 - lo0, p1 = hi1 - lo1, p2 = hi2 - lo2;
      const double ci = p0 > 0 ? p1 / p0 : 0.5 * (b[i] + b[i + 1]);
      change = std::max(change, std::fabs(ci - c[i]));
      c[i] = ci;
      distortion += p2 - 2 * ci * p1 + ci * ci * p0;
      lo0 = hi0, lo1 = hi1, lo2 = hi2;
    }
    if (change < 1e-13) break;
  }
  // Symmetric laws give symmetric codebooks; remove round-off asymmetry exactly.
  for (int i = 0; i < L / 2; ++i) {
    const double m = 0.5 * (c[L - 1 - i] - c[i]);
    c[i] = -m;
    c[L - 1 - i] = m;
  }
  Codebook cb;
  cb.bits = bits;
  cb.distortion = distortion;
  for (double v : c) cb.levels.push_back(static_cast<float>(v));
  for (int i = 1; i < L; ++i) cb.boundaries.push_back(static_cast<float>(0.5 * (c[i - 1] + c[i])));
  return cb;
}

void check_args(int d, int bits) {
  if (bits < 1 || bits > 8)
    throw Error("codebook: bits must be in [1, 8], got " + std::to_string(bits));
  if (d < 2) throw Error("codebook: dimension must be >= 2, got " + std::to_string(d));
}

}  // namespace

int Codebook::index_of(float t) const {
  // Boundaries are sorted; count how many lie below t (ties go to the upper level).
  int i = 0;
  const int n = static_cast<int>(boundaries.size());
  while (i < n && t >= boundaries[i]) ++i;
  return i;
}

// Cells of half the smallest gap between boundaries (at most 4096), so a cell holds at
// most one boundary and the fix-up loops in nearest() take a step at most, rounding aside.
void Codebook::build_grid() {
  grid_.clear();
  const int n = static_cast<int>(boundaries.size());
  if (n < 2) return;
  float gap = boundaries[1] - boundaries[0];
  for (int i = 2; i < n; ++i) gap = std::min(gap, boundaries[i] - boundaries[i - 1]);
  const float span = boundaries[n - 1] - boundaries[0];
  if (!(gap > 0.f) || !(span > 0.f)) return;
  const int cells = static_cast<int>(std::min(4096.0, std::ceil(2.0 * span / gap))) + 1;
  grid_lo_ = boundaries[0];
  grid_scale_ = static_cast<float>(cells - 1) / span;
  grid_.resize(cells);
  int below = 0;
  for (int c = 0; c < cells; ++c) {
    const float edge = grid_lo_ + static_cast<float>(c) / grid_scale_;
    while (below < n && boundaries[below] < edge) ++below;
    grid_[c] = static_cast<uint16_t>(below);
  }
}

const Codebook& lloyd_max_codebook(CoordinateLaw law, int d, int bits) {
  check_args(d, bits);
  static std::mutex mu;
  static std::map<std::tuple<int, int, int>, std::unique_ptr<Codebook>> cache;
  const auto key = std::make_tuple(static_cast<int>(law), d, bits);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto book = std::make_unique<Codebook>(lloyd_max(tabulate_law(law, d), bits));
    book->build_grid();
    it = cache.emplace(key, std::move(book)).first;
  }
  return *it->second;
}

Codebook lloyd_max_unit_gaussian(int bits) {
  check_args(2, bits);
  // N(0, 1/d) with d = 1 is the unit Gaussian; tabulate_law only needs d for sigma.
  return lloyd_max(tabulate_law(CoordinateLaw::gaussian, 1), bits);
}

}  // namespace tq
