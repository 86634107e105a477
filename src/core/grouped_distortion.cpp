// The relative error of one calibrated group as the encoder really makes it (scale search,
// fp16 or log-byte norm), measured on Gaussian groups with a fixed seed, so the layout
// search prices every choice by what the records will hold. Sizes up to 32 are measured
// exactly; above, at four sizes per octave, with the error interpolated in log size between
// them (it changes by a few percent per octave there), which keeps the codebooks to build
// for a head of 256 at 20 sizes instead of 64.
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "turboquant/error.h"
#include "turboquant/quantizers.h"
#include "turboquant/rng.h"

namespace tq {

namespace {

// About this many coordinates per measurement (at least 64 groups): the mean's relative
// standard error is then ~1–2%, well inside what separates neighbouring layouts.
constexpr int kCoordinates = 16384;
constexpr int kMinGroups = 64;

double measure(int size, int bits, int norm_bits) {
  GroupedMseQuantizer q(size, {{size, bits, norm_bits}});
  std::vector<float> y(size), out(size);
  std::vector<uint8_t> rec(q.record_bytes());
  Rng rng(0x9e3779b97f4a7c15ull ^ (static_cast<uint64_t>(size) << 16 | bits << 8 | norm_bits));
  const int n = std::max(kMinGroups, kCoordinates / size);
  double err = 0, energy = 0;
  for (int r = 0; r < n; ++r) {
    for (float& x : y) x = static_cast<float>(rng.gaussian());
    q.encode(y.data(), rec.data());
    q.decode(rec.data(), out.data());
    for (int i = 0; i < size; ++i) {
      err += (double(y[i]) - out[i]) * (double(y[i]) - out[i]);
      energy += double(y[i]) * y[i];
    }
  }
  return err / energy;
}

constexpr int kExactSizes = 32;
constexpr int kPerOctave = 4;

// The measured sizes on each side of `size` (> kExactSizes), and the weight of the upper.
void anchors(int size, int& lo, int& hi, double& w) {
  const double k = kPerOctave * std::log2(static_cast<double>(size) / kExactSizes);
  const int k0 = static_cast<int>(std::floor(k));
  lo = static_cast<int>(std::lround(kExactSizes * std::exp2(static_cast<double>(k0) / kPerOctave)));
  hi = static_cast<int>(std::lround(kExactSizes * std::exp2(static_cast<double>(k0 + 1) / kPerOctave)));
  w = size <= lo ? 0.0 : (std::log2(size) - std::log2(lo)) / (std::log2(hi) - std::log2(lo));
}

double measured(int size, int bits, int norm_bits) {
  static std::mutex mu;
  static std::map<std::tuple<int, int, int>, double> cache;
  const auto key = std::make_tuple(size, bits, norm_bits);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  const double d = measure(size, bits, norm_bits);  // outside the lock: measurements may run in parallel
  std::lock_guard<std::mutex> lock(mu);
  return cache.emplace(key, d).first->second;
}

}  // namespace

double GroupedMseQuantizer::expected_distortion(int size, int bits, int norm_bits) {
  if (bits == 0) return 1.0;
  if (size < 2 || bits < 0 || bits > 8 || (norm_bits != 8 && norm_bits != 16))
    throw Error("grouped codec: no distortion for a group of " + std::to_string(size) + " at " + std::to_string(bits) +
                " bits with a " + std::to_string(norm_bits) + "-bit norm");
  if (size <= kExactSizes) return measured(size, bits, norm_bits);
  int lo, hi;
  double w;
  anchors(size, lo, hi, w);
  if (w == 0.0) return measured(lo, bits, norm_bits);
  return (1 - w) * measured(lo, bits, norm_bits) + w * measured(hi, bits, norm_bits);
}

}  // namespace tq
