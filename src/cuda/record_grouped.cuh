#pragma once
// Calibrated (grouped) records inside the attention kernel. Lane `lane` owns coordinates
// [lane·C, lane·C + C); run boundaries fall on multiples of min(C, 4) (codec_desc.cpp),
// so a lane reads one run, or at d = 256 (C = 8) two halves of 4 coordinates that may lie
// in two runs. What depends only on the lane (code offset and width, norm position and
// kind, level table) is found once per CTA and kept in shared memory ahead of the level
// table: held in registers for both sides it had made the d = 256 kernels spill.
#include <cuda_fp16.h>

#include "device_desc.h"
#include "mma_ops.cuh"
#include "record_decode.cuh"

namespace tq::cuda::detail {

// A run's norm without a branch on its kind (0: width 0, 1: fp16, 2: log byte), for lanes
// of one warp whose runs differ in it: reads two bytes (the second may lie past a log-byte
// norm, inside the record or the buffer's slack) and selects. The log-byte factor is
// computed (one exp2) rather than read from the table, which would be a second
// shared-memory load after the byte's.
__device__ __forceinline__ float grouped_norm_computed(const uint8_t* p, int kind, float log2_step, float log2_off) {
  const uint32_t lo = p[0], hi = p[1];
  const float f16 = __half2float(__ushort_as_half(static_cast<uint16_t>(lo | hi << 8)));
  const float lb = fast_exp2(fmaf(static_cast<float>(lo), log2_step, log2_off));
  return kind == 1 ? f16 : kind == 2 && lo != 0 ? lb : 0.f;
}

// One half of a lane's coordinates: consecutive codes of one run (48 bytes).
struct alignas(16) GroupedPart {
  int code_off;   // byte of the first code within a record
  int code_bit;   // its first bit
  int bits;
  uint32_t mask;
  int norm_off;   // byte of the run's norm
  int norm_kind;  // 0: width 0 (zero), 1: fp16, 2: log byte
  int level_off;  // of the run's levels in the table (width 0: the zero log factor)
  float sqrt_size;
  float log2_step, log2_off;  // log-byte norm as 2^(code · log2_step + log2_off) (GroupRun)

  __device__ static GroupedPart of(const CodecDesc& cd, int coord) {
    int k = 0;
    while (k + 1 < cd.n_runs && cd.runs[k + 1].begin <= coord) ++k;
    const GroupRun r = cd.runs[k];
    const int first = (coord - r.begin) * r.bits;
    GroupedPart p;
    p.code_off = r.offset + r.norm_bytes + (first >> 3);
    p.code_bit = first & 7;
    p.bits = r.bits;
    p.mask = (1u << r.bits) - 1u;
    p.norm_off = r.offset;
    p.norm_kind = r.bits == 0 ? 0 : r.norm_bytes == 2 ? 1 : 2;
    p.level_off = r.level_off;
    p.sqrt_size = r.sqrt_size;
    p.log2_step = r.log2_step;
    p.log2_off = r.log2_off;
    return p;
  }
  // fp16 norms may sit at odd offsets here: two byte loads.
  __device__ float norm(const uint8_t* rec, const float* table) const {
    if (norm_kind == 1)
      return __half2float(__ushort_as_half(static_cast<uint16_t>(rec[norm_off] | (rec[norm_off + 1] << 8))));
    return norm_kind == 2 ? sqrt_size * table[rec[norm_off]] : 0.f;
  }
  template <int N>
  __device__ void levels_of(const uint8_t* rec, const float* table, float* v) const {
    const uint32_t win = bit_window(rec + code_off, code_bit);
    const float* levels = table + level_off;
#pragma unroll
    for (int c = 0; c < N; ++c) v[c] = levels[(win >> (c * bits)) & mask];
  }
};

// Shared-memory floats a grouped side's look-up area starts with: 2 parts x 32 lanes.
constexpr int kGroupedLaneFloats = 2 * 32 * static_cast<int>(sizeof(GroupedPart) / sizeof(float));
// Floats of a grouped side's whole area: lane parts, then the table padded to 32 floats.
__host__ __device__ inline int grouped_lut_floats(const CodecDesc& c) {
  return kGroupedLaneFloats + ((c.table_floats + 31) & ~31);
}

// Fills a grouped side's area: lane parts, then the table (log factors, codebooks).
// Every thread of the CTA calls it; the caller synchronizes before use.
template <int C>
__device__ void fill_grouped_lut(const CodecDesc& cd, float* area, int tid, int n_threads) {
  constexpr int kParts = C > 4 ? 2 : 1;
  GroupedPart* parts = reinterpret_cast<GroupedPart*>(area);
  if (tid < 32 * kParts) parts[tid] = GroupedPart::of(cd, (tid % 32) * C + (tid / 32) * (C / kParts));
  float* table = area + kGroupedLaneFloats;
  for (int e = tid; e < cd.table_floats; e += n_threads) table[e] = cd.table[e];
}

template <int C>
struct GroupedLaneDecoder {
  static constexpr int kParts = C > 4 ? 2 : 1;
  static constexpr int kN = C / kParts;
  const GroupedPart* parts;  // shared memory: this lane's part p at parts[32 p]
  const float* table;

  __device__ GroupedLaneDecoder(const float* area, int lane)
      : parts(reinterpret_cast<const GroupedPart*>(area) + lane), table(area + kGroupedLaneFloats) {}
  __device__ float operator()(const uint8_t* rec, float* v) const {
    if constexpr (kParts == 1) {
      const GroupedPart p = parts[0];
      p.template levels_of<kN>(rec, table, v);
      return p.norm(rec, table);
    } else {
      // Two runs may meet in the lane: their norms go into the values.
#pragma unroll
      for (int k = 0; k < kParts; ++k) {
        const GroupedPart p = parts[32 * k];
        p.template levels_of<kN>(rec, table, v + k * kN);
        const float n = p.norm(rec, table);
#pragma unroll
        for (int c = 0; c < kN; ++c) v[k * kN + c] *= n;
      }
      return 1.f;
    }
  }
};

}  // namespace tq::cuda::detail
