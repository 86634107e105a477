// Calibrated groups (see quantizers.h): TurboQuant_mse run separately on each group of
// coordinates, so every group keeps its own norm and its own width.
#include <algorithm>
#include <cmath>
#include <string>

#include "turboquant/error.h"
#include "half_fields.h"
#include "turboquant/packing.h"
#include "turboquant/quantizers.h"

namespace tq {

namespace {

constexpr int kLogSteps = 16;  // log-byte norm codes per octave
constexpr int kLogZero = 128;  // code of the group's typical norm √size

// The code of a norm: rounded in the log domain; 0 for zero; norms beyond the byte's range
// saturate at its ends (counted like a saturated fp16 field).
int log_code(int size, double norm, detail::HalfFields& fields) {
  if (!(norm > 0)) return 0;
  const double steps = std::round(kLogSteps * std::log2(norm / std::sqrt(double(size)))) + kLogZero;
  if (steps < 1 || steps > 255) fields.note_clamped();
  return static_cast<int>(std::clamp(steps, 1.0, 255.0));
}

}  // namespace

size_t GroupedMseQuantizer::layout_bytes(const std::vector<QuantGroup>& groups) {
  size_t bytes = 0;
  for (const QuantGroup& g : groups)
    if (g.bits > 0) bytes += g.norm_bits / 8 + packed_bytes(g.size, g.bits);
  return bytes;
}

float GroupedMseQuantizer::log_norm_factor(int code) {
  return code == 0 ? 0.f : std::exp2(static_cast<float>(code - kLogZero) / kLogSteps);
}

float GroupedMseQuantizer::load_norm(const Run& r, const uint8_t* record) const {
  if (r.norm_bytes == 2) return load_half(record + r.offset);
  return std::sqrt(static_cast<float>(r.size)) * log_norm_factor(record[r.offset]);
}

void GroupedMseQuantizer::store_norm(const Run& r, float norm, uint8_t* record, detail::HalfFields& fields) const {
  if (r.norm_bytes == 2) {
    fields.store(record + r.offset, norm);
    return;
  }
  record[r.offset] = static_cast<uint8_t>(log_code(r.size, norm, fields));
}

GroupedMseQuantizer::GroupedMseQuantizer(int dim, std::vector<QuantGroup> groups)
    : Quantizer(dim), groups_(std::move(groups)) {
  int begin = 0;
  size_t offset = 0;
  for (const QuantGroup& g : groups_) {
    if (g.size < 1 || g.bits < 0 || g.bits > 8 || (g.bits > 0 && g.size < 2) || (g.norm_bits != 8 && g.norm_bits != 16))
      throw Error("grouped codec: group of " + std::to_string(g.size) + " coordinates at " + std::to_string(g.bits) +
                  " bits with a " + std::to_string(g.norm_bits) +
                  "-bit norm is not allowed (coded groups need >= 2 coordinates, widths 0-8, norms of 8 or 16 bits)");
    Run r{begin, g.size, g.bits, g.norm_bits / 8, offset, nullptr};
    if (g.bits > 0) {
      r.codebook = &lloyd_max_codebook(CoordinateLaw::sphere, g.size, g.bits);
      offset += r.norm_bytes + packed_bytes(g.size, g.bits);
    }
    runs_.push_back(r);
    begin += g.size;
  }
  if (begin != dim)
    throw Error("grouped codec: groups cover " + std::to_string(begin) + " coordinates, the vector has " +
                std::to_string(dim));
  record_bytes_ = offset;
}

namespace {

// Trial scales on each side of ‖v‖, in steps of 2^(1/16): trial o has scale
// ‖v‖ · 2^((o − kScaleTrials)/16), so o = kScaleTrials is ‖v‖ itself.
constexpr int kScaleTrials = 5;
constexpr int kTrials = 2 * kScaleTrials + 1;
// The order trials are compared in (the first of equal ones wins): ‖v‖ first, then the
// others from the largest reciprocal scale (o = 0) up.
constexpr int kCompareOrder[kTrials] = {5, 0, 1, 2, 3, 4, 6, 7, 8, 9, 10};

// Index k with boundaries[k−1] <= t < boundaries[k], walking from a nearby k.
inline int walk_to(const std::vector<float>& b, int k, float t) {
  while (k > 0 && b[k - 1] > t) --k;
  while (k < static_cast<int>(b.size()) && t >= b[k]) ++k;
  return k;
}

}  // namespace

// A group's codes are chosen for direction: for trial scales s around ‖v‖ (steps of
// 2^(1/16)), the codes are the nearest levels of v/s, and the trial whose levels point
// closest to v (largest cos θ = v·c / ‖v‖‖c‖) wins; the first trial, s = ‖v‖, is the plain
// nearest-level choice, so the angle is never worse than it. The scale stored is
// ‖v‖² / v·c, which makes the projection exact, v·ŷ = ‖v‖²: scores and attention outputs
// are not shrunk (a least-squares scale shrinks them by cos²θ, the norm-matching one by
// cos θ; measured on SmolLM2 and Gemma 3, KL drops in that order), and the error
// ‖v‖² tan²θ is within a few percent of the least-squares sin²θ. On Gaussian groups it
// is 5–50% below plain nearest-level coding (more for small groups and more bits).
//
// All trials run in one pass over the coordinates (each trial's sums still in coordinate
// order, so the choice is the same as trial after trial): a coordinate's level index moves
// by a step or so between neighbouring scales, so the trials walk from largest scale to
// smallest instead of searching, and their sums are independent chains.
void GroupedMseQuantizer::encode(const float* y, uint8_t* record) const {
  std::vector<uint8_t> idx;
  detail::HalfFields fields;
  for (const Run& r : runs_) {
    if (!r.codebook) continue;
    const Codebook& book = *r.codebook;
    const float* v = y + r.begin;
    double n2 = 0;
    for (int i = 0; i < r.size; ++i) n2 += double(v[i]) * v[i];
    const double norm = std::sqrt(n2);
    const float inv = detail::reciprocal_or_zero(norm);
    idx.resize(static_cast<size_t>(kTrials) * r.size);
    double cc[kTrials] = {}, vc[kTrials] = {};
    int best = kScaleTrials;
    if (inv == 0.f) {  // zero or denormal: the zero codes' levels, the scale as it comes
      for (int i = 0; i < r.size; ++i) {
        const int k = book.nearest(v[i] * inv);
        idx[static_cast<size_t>(best) * r.size + i] = static_cast<uint8_t>(k);
        vc[best] += book.levels[k] * double(v[i]);
      }
    } else {
      float scale[kTrials];  // reciprocal scales, largest first
      for (int o = 0; o < kTrials; ++o)
        scale[o] = o == kScaleTrials ? inv : static_cast<float>(inv * std::exp2((kScaleTrials - o) / 16.0));
      for (int i = 0; i < r.size; ++i) {
        const float x = v[i];
        int k = book.nearest(x * scale[0]);
#pragma GCC unroll 11
        for (int o = 0; o < kTrials; ++o) {
          if (o > 0) k = walk_to(book.boundaries, k, x * scale[o]);
          idx[static_cast<size_t>(o) * r.size + i] = static_cast<uint8_t>(k);
          const double c = book.levels[k];
          cc[o] += c * c;
          vc[o] += c * double(x);
        }
      }
      for (int o : kCompareOrder)
        // cos² compared without division: vc² / cc > best's vc² / cc, for positive vc.
        if (vc[o] > 0 && vc[o] * vc[o] * cc[best] > vc[best] * vc[best] * cc[o]) best = o;
    }
    store_norm(r, norm > 0 && vc[best] > 0 ? static_cast<float>(n2 / vc[best]) : 0.f, record, fields);
    pack_bits(idx.data() + static_cast<size_t>(best) * r.size, r.size, r.bits, record + r.offset + r.norm_bytes);
  }
}

void GroupedMseQuantizer::decode(const uint8_t* record, float* y) const {
  for (const Run& r : runs_) {
    if (!r.codebook) {
      for (int i = 0; i < r.size; ++i) y[r.begin + i] = 0.f;
      continue;
    }
    const float norm = load_norm(r, record);
    const uint8_t* codes = record + r.offset + r.norm_bytes;
    for (int i = 0; i < r.size; ++i) y[r.begin + i] = norm * r.codebook->levels[read_code(codes, i, r.bits)];
  }
}

void GroupedMseQuantizer::prepare_query(const float* qy, float* state) const {
  for (int i = 0; i < dim_; ++i) state[i] = qy[i];
  state[dim_] = 0.f;
}

float GroupedMseQuantizer::dot(const float* state, const uint8_t* record) const {
  float total = state[dim_];
  for (const Run& r : runs_) {
    if (!r.codebook) continue;
    const uint8_t* codes = record + r.offset + r.norm_bytes;
    float s = 0.f;
    for (int i = 0; i < r.size; ++i) s += state[r.begin + i] * r.codebook->levels[read_code(codes, i, r.bits)];
    total += load_norm(r, record) * s;
  }
  return total;
}

void GroupedMseQuantizer::accumulate(const uint8_t* record, float weight, float* acc) const {
  for (const Run& r : runs_) {
    if (!r.codebook) continue;
    const float w = weight * load_norm(r, record);
    const uint8_t* codes = record + r.offset + r.norm_bytes;
    for (int i = 0; i < r.size; ++i) acc[r.begin + i] += w * r.codebook->levels[read_code(codes, i, r.bits)];
  }
}

}  // namespace tq
