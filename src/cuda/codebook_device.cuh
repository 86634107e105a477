#pragma once
// An mse codec row's two codebooks (high- and low-width coordinate subsets) in shared
// memory, and Codebook::index_of on them; shared by both quantize-on-write kernels.
#include <cmath>

#include "device_desc.h"

namespace tq::cuda::detail {

struct SharedCodebooks {
  float bounds[2][kMaxLevels];
  float levels[2][kMaxLevels];
};

// Threads [0, 2 * kMaxLevels) of the CTA fill cb; the caller syncs before use. The slot
// after the last boundary holds +inf.
__device__ inline void load_codebooks(const CodecDesc& c, SharedCodebooks& cb, int tid) {
  if (tid < 2 * kMaxLevels) {
    const int half = tid / kMaxLevels, k = tid % kMaxLevels;
    cb.levels[half][k] = half ? c.levels_lo[k] : c.levels_hi[k];
    cb.bounds[half][k] = k < kMaxLevels - 1 ? (half ? c.bounds_lo[k] : c.bounds_hi[k]) : INFINITY;
  }
}

// Codebook::index_of (the number of boundaries <= t, ties going up) as a binary search
// over the 2^bits - 1 sorted boundaries: `bits` compares instead of 2^bits - 1.
__device__ inline int bucketize(float t, const float* bounds, int bits) {
  int idx = 0;
  for (int step = 1 << (bits - 1); step > 0; step >>= 1)
    if (t >= bounds[idx + step - 1]) idx += step;
  return idx;
}

// The same search for a width known at compile time: unrolled, no branches.
template <int kBits>
__device__ inline int bucketize(float t, const float* bounds) {
  int idx = 0;
#pragma unroll
  for (int step = 1 << (kBits - 1); step > 0; step >>= 1) idx += t >= bounds[idx + step - 1] ? step : 0;
  return idx;
}

// The width every code of an mse record has (1-4), or 0 where the two coordinate groups'
// widths differ (fractional widths): the kernels that unroll per width dispatch on it.
__host__ __device__ inline int mse_uniform_bits(const CodecDesc& c, int d) {
  if (c.n_hi >= d) return c.bits_hi;
  if (c.n_hi <= 0 || c.bits_hi == c.bits_lo) return c.bits_lo;
  return 0;
}

}  // namespace tq::cuda::detail
