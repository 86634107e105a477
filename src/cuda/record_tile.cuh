#pragma once
// The records the tile tensor-core decode kernel (decode_mma_grouped.cu) reads, one policy
// per kind. A policy's Lane<D> turns this lane's C = D/32 coordinates [lane·C, lane·C + C)
// of one record into C/2 half2 words (its part of an f16 tile row); the f16 policy is
// kDirect instead: its records are f16 rows already, copied into the tile layout as they
// are, with no dequantization step.
#include <cuda_fp16.h>

#include "device_desc.h"
#include "dtype_device.cuh"
#include "mma_ops.cuh"
#include "record_grouped.cuh"

namespace tq::cuda::detail {

// Calibrated records: level · group norm (levels and norm rounded to f16, multiplied as
// half2), through the lane parts and level table in the side's shared-memory area.
struct GroupedTileRecords {
  static constexpr bool kDirect = false, kAnyAlign = true;
  static constexpr int kStages = 4;
  static constexpr int min_blocks(int D) { return D <= 128 ? 4 : 2; }
  __host__ __device__ static int lut_floats(const CodecDesc& c) { return grouped_lut_floats(c); }
  template <int D>
  __device__ static void fill_lut(const CodecDesc& c, float* area, int tid, int n_threads) {
    fill_grouped_lut<D / 32>(c, area, tid, n_threads);
  }
  template <int D>
  struct Lane {
    static constexpr int C = D / 32, kParts = C > 4 ? 2 : 1, N = C / kParts;
    GroupedPart part[kParts];
    const float* table;
    // The lane's parts are read once: the tile stores would otherwise make the compiler
    // reload them per token.
    __device__ Lane(const float* area, int lane) : table(area + kGroupedLaneFloats) {
      const GroupedPart* parts = reinterpret_cast<const GroupedPart*>(area) + lane;
#pragma unroll
      for (int k = 0; k < kParts; ++k) part[k] = parts[32 * k];
    }
    __device__ void operator()(const uint8_t* rec, uint32_t (&hv)[C / 2]) const {
#pragma unroll
      for (int k = 0; k < kParts; ++k) {
        float lv[N];
        part[k].template levels_of<N>(rec, table, lv);
        const __half2 n2 = __float2half2_rn(part[k].norm_any(rec, table));
#pragma unroll
        for (int c = 0; c < N / 2; ++c) {
          const __half2 x = __hmul2(__floats2half2_rn(lv[2 * c], lv[2 * c + 1]), n2);
          hv[k * N / 2 + c] = *reinterpret_cast<const uint32_t*>(&x);
        }
      }
    }
  };
};

// Records with no look-up area (f16, q8_0, q4_0).
struct PlainTileRecords {
  __host__ __device__ static int lut_floats(const CodecDesc&) { return 0; }
  template <int D>
  __device__ static void fill_lut(const CodecDesc&, float*, int, int) {}
};

// q8_0: blocks of 32 coordinates [fp16 scale][32 int8]; x = scale · q, rounded to f16
// once (the product in f32). The lane's C <= 8 coordinates lie in one block, at an even
// offset: 16-bit loads.
struct Q8TileRecords : PlainTileRecords {
  static constexpr bool kDirect = false, kAnyAlign = false;
  static constexpr int kStages = 3;
  static constexpr int min_blocks(int D) { return D <= 128 ? 3 : 1; }
  template <int D>
  struct Lane {
    static constexpr int C = D / 32;
    int scale_off, code_off;
    __device__ Lane(const float*, int lane)
        : scale_off(34 * (lane * C / 32)), code_off(34 * (lane * C / 32) + 2 + lane * C % 32) {}
    __device__ void operator()(const uint8_t* rec, uint32_t (&hv)[C / 2]) const {
      const float s = load_half_field(rec + scale_off);
      const uint16_t* q = reinterpret_cast<const uint16_t*>(rec + code_off);
#pragma unroll
      for (int c = 0; c < C / 2; ++c) {
        const uint32_t w = q[c];
        const float lo = static_cast<float>(static_cast<int8_t>(w & 255u));
        const float hi = static_cast<float>(static_cast<int8_t>(w >> 8));
        hv[c] = pack_half2(lo * s, hi * s);
      }
    }
  };
};

// q4_0: blocks of 32 coordinates [fp16 scale][16 bytes: coordinate j in the low nibble of
// byte j, j + 16 in the high one]; x = scale · (q − 8). The lane's coordinates lie in one
// half of one block: one nibble position, consecutive bytes at an even offset.
struct Q4TileRecords : PlainTileRecords {
  static constexpr bool kDirect = false, kAnyAlign = false;
  static constexpr int kStages = 4;
  static constexpr int min_blocks(int D) { return D <= 128 ? 4 : 2; }
  template <int D>
  struct Lane {
    static constexpr int C = D / 32;
    int scale_off, code_off, shift;
    __device__ Lane(const float*, int lane)
        : scale_off(18 * (lane * C / 32)),
          code_off(18 * (lane * C / 32) + 2 + (lane * C % 32 & 15)),
          shift(lane * C % 32 < 16 ? 0 : 4) {}
    __device__ void operator()(const uint8_t* rec, uint32_t (&hv)[C / 2]) const {
      const float s = load_half_field(rec + scale_off);
      const uint16_t* q = reinterpret_cast<const uint16_t*>(rec + code_off);
#pragma unroll
      for (int c = 0; c < C / 2; ++c) {
        const uint32_t w = static_cast<uint32_t>(q[c]) >> shift;
        const float lo = static_cast<float>(static_cast<int>(w & 15u) - 8);
        const float hi = static_cast<float>(static_cast<int>((w >> 8) & 15u) - 8);
        hv[c] = pack_half2(lo * s, hi * s);
      }
    }
  };
};

// f16: the records are tile rows. Bandwidth-bound, so three stages of 16 K and 16 V rows
// per warp (two CTAs per SM at d = 128) keep the copies in flight.
struct F16TileRecords : PlainTileRecords {
  static constexpr bool kDirect = true, kAnyAlign = false;
  static constexpr int kStages = 3;
  static constexpr int min_blocks(int D) { return D <= 128 ? 2 : 1; }
  template <int D>
  struct Lane {  // nothing to decode
    __device__ Lane(const float*, int) {}
  };
};

}  // namespace tq::cuda::detail
