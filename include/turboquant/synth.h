#pragma once
// Synthetic quality of every codec on random unit vectors (the first protocol of
// DESIGN.md): distortion, inner-product error, cosine, and the same on structured
// vectors with a few large outlier channels, as real keys have.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "turboquant/head_dim.h"

namespace tq {

struct SynthOptions {
  std::vector<std::string> codecs;  // empty: every codec in the table
  std::vector<int> dims{std::begin(kHeadDims), std::end(kHeadDims)};
  int vectors = 4000;
  uint64_t seed = 42;
};

struct SynthRow {
  std::string codec;
  int dim = 0;
  double bits_per_coord = 0;  // record bytes * 8 / dim, norms and scales included
  size_t record_bytes = 0;
  size_t params = 0;
  double mse = 0;            // E‖u − û‖² on uniform unit vectors
  double lloyd_max = 0;      // dim × per-coordinate Lloyd–Max distortion (mse codecs; else 0)
  double cosine = 0;         // mean cos(u, û)
  double ip_bias = 0;        // mean (est − <q,u>) for queries with <q,u> ≈ 0.7
  double ip_bias_se = 0;     // its standard error
  double ip_rmse = 0;        // RMS of that error
  double mse_outlier = 0;    // E‖u − û‖² on unit vectors with 4 outlier channels (20× scale)
  double cosine_outlier = 0;
};

using Progress = std::function<void(size_t done, size_t total, const std::string& what)>;

std::vector<SynthRow> run_synth(const SynthOptions& opt, const Progress& progress = {});
std::string synth_table(const std::vector<SynthRow>& rows);
std::string synth_json(const std::vector<SynthRow>& rows);

}  // namespace tq
