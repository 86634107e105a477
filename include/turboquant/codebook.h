#pragma once
// Lloyd–Max scalar codebooks, computed (numerical integration + Lloyd iteration),
// never pasted. Levels are sorted ascending; boundaries are the midpoints.
#include <cstdint>
#include <vector>

namespace tq {

enum class CoordinateLaw {
  sphere,    // one coordinate of a uniform unit vector in R^d: density ∝ (1−t²)^((d−3)/2)
  gaussian,  // N(0, 1/d)
};

struct Codebook {
  int bits = 0;
  std::vector<float> levels;      // 2^bits, ascending
  std::vector<float> boundaries;  // 2^bits − 1 midpoints between levels
  double distortion = 0.0;        // E[(t − Q(t))²] per coordinate under the law
  int index_of(float t) const;    // nearest level (scan; ties go to the upper level)
  // The same index as index_of, in O(1): a uniform grid over the boundaries tells how many
  // lie below each cell, and at most a step or two fixes the cell's rounding. Encoders
  // that search many scales per vector call it (built for cached codebooks; a codebook
  // without a grid scans).
  int nearest(float t) const;
  void build_grid();

 private:
  std::vector<uint16_t> grid_;  // boundaries below each cell's lower edge
  float grid_lo_ = 0.f, grid_scale_ = 0.f;
};

// Cached after the first call for each (law, d, bits); thread-safe. bits in [1, 8], d >= 2.
inline int Codebook::nearest(float t) const {
  if (grid_.empty()) return index_of(t);
  const int n = static_cast<int>(boundaries.size());
  const float f = (t - grid_lo_) * grid_scale_;
  const int last = static_cast<int>(grid_.size()) - 1;
  const int cell = !(f > 0.f) ? 0 : f >= static_cast<float>(last) ? last : static_cast<int>(f);
  int i = grid_[cell];
  while (i > 0 && boundaries[i - 1] > t) --i;
  while (i < n && t >= boundaries[i]) ++i;
  return i;
}

const Codebook& lloyd_max_codebook(CoordinateLaw law, int d, int bits);

// Unit-variance Gaussian Lloyd–Max levels (the classic table), for checks.
Codebook lloyd_max_unit_gaussian(int bits);

}  // namespace tq
