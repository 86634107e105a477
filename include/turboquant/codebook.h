#pragma once
// Lloyd–Max scalar codebooks, computed (numerical integration + Lloyd iteration),
// never pasted. Levels are sorted ascending; boundaries are the midpoints.
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
  int index_of(float t) const;    // nearest level
};

// Cached after the first call for each (law, d, bits); thread-safe. bits in [1, 8], d >= 2.
const Codebook& lloyd_max_codebook(CoordinateLaw law, int d, int bits);

// Unit-variance Gaussian Lloyd–Max levels (the classic table), for checks.
Codebook lloyd_max_unit_gaussian(int bits);

}  // namespace tq
