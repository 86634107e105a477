#pragma once
// Calibrated (grouped) records on the device: GroupedMseQuantizer::encode replayed one
// run per half-warp, a trial per lane, each in the reference's order. Every double sum
// adds exact products of two floats (so FMA contraction cannot change it), the trial
// scales come from the host's libm, and the cos² comparison and the stored norm round
// each product separately: the codes and fp16 norms are the reference's. The log-byte
// code goes through the device's log2, which can differ from the host's in the last bit:
// a code may differ where the norm sits within ~1e-16 of a rounding tie (the tests'
// contract allows such groups).
#include <cuda_fp16.h>

#include "device_desc.h"
#include "range_device.cuh"

namespace tq::cuda::detail {

// Codebook::index_of over `n` sorted boundaries (count of those <= t) by binary search.
__device__ inline int grouped_bucket(float t, const float* bounds, int bits) {
  int idx = 0;
  for (int step = 1 << (bits - 1); step > 0; step >>= 1)
    if (t >= bounds[idx + step - 1]) idx += step;
  return idx;
}

struct GroupedFit {
  double cc = 0, vc = 0;
};

// Σc² and Σv·c of the nearest levels of v·s, added in coordinate order. Four coordinates
// are searched side by side (their loads overlap; one at a time, each step waited on the
// last load) before their terms join the sums in order.
__device__ inline GroupedFit grouped_fit(const float* v, const GroupRun& r, const float* table, float s) {
  constexpr int kStep = 4;
  GroupedFit f;
  const float* levels = table + r.level_off;
  const float* bounds = table + r.bound_off;
  auto add = [&](int idx, float x) {
    const double c = __ldg(levels + idx);
    f.cc += c * c;
    f.vc += c * static_cast<double>(x);
  };
  int i = 0;
  for (; i + kStep <= r.size; i += kStep) {
    float t[kStep];
    int idx[kStep];
#pragma unroll
    for (int u = 0; u < kStep; ++u) {
      t[u] = __fmul_rn(v[i + u], s);
      idx[u] = 0;
    }
    for (int step = 1 << (r.bits - 1); step > 0; step >>= 1)
#pragma unroll
      for (int u = 0; u < kStep; ++u)
        if (t[u] >= __ldg(bounds + idx[u] + step - 1)) idx[u] += step;
#pragma unroll
    for (int u = 0; u < kStep; ++u) add(idx[u], v[i + u]);
  }
  for (; i < r.size; ++i) add(grouped_bucket(__fmul_rn(v[i], s), bounds, r.bits), v[i]);
  return f;
}

// log_code (quantizer_grouped.cpp): 16 steps per octave around √size, 0 for zero.
__device__ inline int grouped_log_code(int size, float norm, bool& saturated) {
  if (!(norm > 0.f)) return 0;
  const double steps = round(16.0 * log2(static_cast<double>(norm) / sqrt(static_cast<double>(size)))) + 128.0;
  if (steps < 1.0 || steps > 255.0) saturated = true;
  return static_cast<int>(fmin(fmax(steps, 1.0), 255.0));
}

// One run of one vector v (its `size` code-space coordinates) into out = record + offset,
// by the 16 lanes of a half-warp (`mask`; o = lane & 15): lane o < 11 fits trial o, the
// scale 1/‖v‖ · 2^((5 − o)/16), and lanes 11-15 repeat trial 5. Each lane sums over the
// coordinates in order, as the reference's trials do (one pass, sums in coordinate
// order), so the sums, the choice and the codes are the reference's. Then lane o packs
// the codes of coordinates [8g, 8g + 8) for g = o, o + 16, ...: eight codes of b bits
// start at byte g·b. Returns whether lane 0's norm field saturated (false elsewhere).
__device__ inline bool encode_grouped_run(const CodecDesc& c, const GroupRun& r, const float* v, uint8_t* out,
                                          unsigned mask, int o) {
  constexpr int kPlain = kScaleTrials / 2;  // trial 5: the scale 1/‖v‖ itself
  double n2 = 0;
  for (int i = 0; i < r.size; ++i) n2 += static_cast<double>(v[i]) * v[i];
  const double norm = sqrt(n2);
  float inv = 0.f;  // reciprocal_or_zero(double)
  if (norm != 0.0) {
    inv = __double2float_rn(1.0 / norm);
    if (isinf(inv)) inv = 0.f;
  }
  const int trial = o < kScaleTrials ? o : kPlain;
  const float s = trial == kPlain ? inv : __double2float_rn(__dmul_rn(static_cast<double>(inv), c.trial_scale[trial]));
  const GroupedFit mine = grouped_fit(v, r, c.table, s);
  // The reference's comparison: trial 5 first, then 0-4 and 6-10; the first of equals wins.
  const int base = (threadIdx.x & 31) & 16;
  int best = kPlain;
  GroupedFit b{__shfl_sync(mask, mine.cc, base + kPlain), __shfl_sync(mask, mine.vc, base + kPlain)};
  for (int k = 0; inv != 0.f && k < kScaleTrials; ++k) {
    if (k == kPlain) continue;
    const GroupedFit f{__shfl_sync(mask, mine.cc, base + k), __shfl_sync(mask, mine.vc, base + k)};
    if (f.vc > 0 && __dmul_rn(__dmul_rn(f.vc, f.vc), b.cc) > __dmul_rn(__dmul_rn(b.vc, b.vc), f.cc)) {
      b = f;
      best = k;
    }
  }
  const float best_s = __shfl_sync(mask, s, base + best);
  bool saturated = false;
  if (o == 0) {
    const float stored = norm > 0 && b.vc > 0 ? __double2float_rn(__ddiv_rn(n2, b.vc)) : 0.f;
    if (r.norm_bytes == 2) {
      // The fp16 bits, byte by byte (the field may sit at an odd offset), taken from a
      // 32-bit f16x2 conversion: from the 16-bit cvt result, ptxas (CUDA 13.0) had stored
      // trunc(norm) as the low byte (seen on the H200; the PTX was right).
      const __half2 h2 = __floats2half2_rn(clamp_to_half_range(stored, saturated), 0.f);
      const uint32_t h = *reinterpret_cast<const uint32_t*>(&h2) & 0xffffu;
      out[0] = static_cast<uint8_t>(h & 0xffu);
      out[1] = static_cast<uint8_t>(h >> 8);
    } else {
      out[0] = static_cast<uint8_t>(grouped_log_code(r.size, stored, saturated));
    }
  }
  // Codes of the winning scale, packed LSB-first (packing.h).
  uint8_t* codes = out + r.norm_bytes;
  const float* bounds = c.table + r.bound_off;
  for (int g = o; 8 * g < r.size; g += 16) {
    const int first = 8 * g, n = min(8, r.size - first);
    uint64_t word = 0;
    for (int t = 0; t < n; ++t)
      word |= static_cast<uint64_t>(grouped_bucket(__fmul_rn(v[first + t], best_s), bounds, r.bits)) << (t * r.bits);
    for (int k = 0; k < (n * r.bits + 7) / 8; ++k) codes[g * r.bits + k] = static_cast<uint8_t>(word >> (8 * k));
  }
  return saturated;
}

}  // namespace tq::cuda::detail
