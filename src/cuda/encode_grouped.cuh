#pragma once
// Calibrated (grouped) records on the device: GroupedMseQuantizer::encode replayed one
// run per thread in the reference's order. Every double sum adds exact products of two
// floats (so FMA contraction cannot change it), the trial scales come from the host's
// libm, and the cos² comparison and the stored norm round each product separately: the
// codes and fp16 norms are the reference's. The log-byte code goes through the device's
// log2, which can differ from the host's in the last bit: a code may differ where the
// norm sits within ~1e-16 of a rounding tie (the tests' contract allows such groups).
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

// Σc² and Σv·c of the nearest levels of v·s.
__device__ inline GroupedFit grouped_fit(const float* v, const GroupRun& r, const float* table, float s) {
  GroupedFit f;
  const float* levels = table + r.level_off;
  const float* bounds = table + r.bound_off;
  for (int i = 0; i < r.size; ++i) {
    const double c = levels[grouped_bucket(__fmul_rn(v[i], s), bounds, r.bits)];
    f.cc += c * c;
    f.vc += c * static_cast<double>(v[i]);
  }
  return f;
}

// log_code (quantizer_grouped.cpp): 16 steps per octave around √size, 0 for zero.
__device__ inline int grouped_log_code(int size, float norm, bool& saturated) {
  if (!(norm > 0.f)) return 0;
  const double steps = round(16.0 * log2(static_cast<double>(norm) / sqrt(static_cast<double>(size)))) + 128.0;
  if (steps < 1.0 || steps > 255.0) saturated = true;
  return static_cast<int>(fmin(fmax(steps, 1.0), 255.0));
}

// One run of one vector v (its `size` code-space coordinates) into out = record + offset.
__device__ inline void encode_grouped_run(const CodecDesc& c, const GroupRun& r, const float* v, uint8_t* out,
                                          bool& saturated) {
  double n2 = 0;
  for (int i = 0; i < r.size; ++i) n2 += static_cast<double>(v[i]) * v[i];
  const double norm = sqrt(n2);
  float inv = 0.f;  // reciprocal_or_zero(double)
  if (norm != 0.0) {
    inv = __double2float_rn(1.0 / norm);
    if (isinf(inv)) inv = 0.f;
  }
  float best_s = inv;
  GroupedFit best = grouped_fit(v, r, c.table, inv);
  for (int j = -5; inv != 0.f && j <= 5; ++j) {
    if (j == 0) continue;
    const float s = __double2float_rn(__dmul_rn(static_cast<double>(inv), c.trial_scale[j + 5]));
    const GroupedFit f = grouped_fit(v, r, c.table, s);
    if (f.vc > 0 && __dmul_rn(__dmul_rn(f.vc, f.vc), best.cc) > __dmul_rn(__dmul_rn(best.vc, best.vc), f.cc)) {
      best = f;
      best_s = s;
    }
  }
  const float stored = norm > 0 && best.vc > 0 ? __double2float_rn(__ddiv_rn(n2, best.vc)) : 0.f;
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
  // Codes of the winning scale, packed LSB-first (packing.h).
  uint8_t* codes = out + r.norm_bytes;
  const int n_bytes = (r.size * r.bits + 7) / 8;
  for (int k = 0; k < n_bytes; ++k) codes[k] = 0;
  const float* bounds = c.table + r.bound_off;
  for (int i = 0; i < r.size; ++i) {
    const uint32_t code = static_cast<uint32_t>(grouped_bucket(__fmul_rn(v[i], best_s), bounds, r.bits));
    const int bit = i * r.bits;
    codes[bit >> 3] |= static_cast<uint8_t>(code << (bit & 7));
    if ((bit & 7) + r.bits > 8) codes[(bit >> 3) + 1] |= static_cast<uint8_t>(code >> (8 - (bit & 7)));
  }
}

}  // namespace tq::cuda::detail
