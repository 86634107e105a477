#pragma once
// The records the tile tensor-core decode kernel (decode_mma_grouped.cu) reads, one policy
// per kind (calibrated records: record_grouped_tile.cuh). A policy's Lane<D> turns this
// lane's C = D/32 coordinates [lane·C, lane·C + C) of one record into C/2 half2 words (its
// part of an f16 tile row): prepare(records, bytes, lane) reads what a step's records share
// (kPrepare policies; a __syncwarp follows), then visit(f) hands f the decoder of the step's
// records, dec(record j, j, words). The f16 policy is kDirect instead: its records are f16
// rows already, copied into the tile layout as they are, with no dequantization step. The
// q8_0 / q4_0 policies are kFrag: no tile either, their codes go straight into the mma
// fragments (Frag<D>, record_frag.cuh).
#include <cuda_fp16.h>

#include "device_desc.h"
#include "dtype_device.cuh"
#include "mma_ops.cuh"
#include "record_frag.cuh"
#include "record_grouped_tile.cuh"

namespace tq::cuda::detail {

// Records with no look-up area (f16, q8_0, q4_0, fp8). kFrag: read straight into mma
// fragments (record_frag.cuh), with no tile.
struct PlainTileRecords {
  static constexpr bool kPrepare = false, kFrag = false;
  __host__ __device__ static int lut_floats(const CodecDesc&) { return 0; }
  template <int D>
  __device__ static void fill_lut(const CodecDesc&, float*, int, int) {}
};

// q8_0 / q4_0: blocks of 32 coordinates [fp16 scale][codes]; x = scale · code, read
// straight from the ring into mma fragments (record_frag.cuh). Codes become exact f16
// integers by placing them in the mantissa of 1024 (one byte permute or mask, one half2
// subtraction), and one half2 multiply by the fp16 scale rounds each product once: the
// conversions of int -> float -> half had run at the quarter-rate conversion pipe and
// bounded the kernel.
template <class BlockCode>
struct Block32TileRecords : PlainTileRecords {
  using Code = BlockCode;
  static constexpr bool kDirect = false, kAnyAlign = false, kFrag = true;
  static constexpr int kStages = Code::kStages;
  static constexpr int min_blocks(int D) { return Code::min_blocks(D); }
  template <int D>
  using Frag = Block32Frag<Code, D>;
  template <int D>
  struct Lane {  // nothing to decode into a tile
    __device__ Lane(const CodecDesc&, const float*, int, int) {}
  };
};

// q8_0: [fp16 scale][32 int8]. Code byte b (two's complement q) as 1024 + (b ^ 0x80) =
// 1024 + 128 + q. Three stages: three CTAs per SM at d = 128.
struct Q8Code {
  static constexpr int kBlockBytes = 34, kStages = 3;
  static constexpr float kBias = 1152.f;
  static constexpr int min_blocks(int D) { return D <= 128 ? 3 : 1; }
  __device__ static int byte_of(int j) { return j; }
  __device__ static int shift_of(int) { return 0; }
  __device__ static uint32_t biased_pair(uint32_t w) { return __byte_perm(w ^ 0x8080u, 0x64646464u, 0x4140); }
};
// q4_0: [fp16 scale][16 bytes: coordinate j in the low nibble of byte j, j + 16 in the high
// one]; code n − 8, as 1024 + n minus 1032.
struct Q4Code {
  static constexpr int kBlockBytes = 18, kStages = 4;
  static constexpr float kBias = 1032.f;
  static constexpr int min_blocks(int D) { return D <= 128 ? 4 : 2; }
  __device__ static int byte_of(int j) { return j & 15; }
  __device__ static int shift_of(int j) { return j < 16 ? 0 : 4; }
  __device__ static uint32_t biased_pair(uint32_t w) {
    return (__byte_perm(w, 0u, 0x4140) & 0x000F000Fu) | 0x64006400u;
  }
};
using Q8TileRecords = Block32TileRecords<Q8Code>;
using Q4TileRecords = Block32TileRecords<Q4Code>;

// fp8: [fp16 s][D E4M3 codes]; x = s · e4m3(c). A code's bits 6..0 placed at bits 13..7
// of an fp16 (its sign at bit 15) are the fp16 of e4m3(c) / 256, subnormals included (both
// formats' subnormals scale by the same 2^8), so a byte permute, a shift and a mask give two
// coordinates and one half2 multiply by 256·s (exact in fp16) rounds each product once, as
// q8_0's. No conversion instruction: cvt runs on the quarter-rate pipe (see above).
struct Fp8TileRecords : PlainTileRecords {
  static constexpr bool kDirect = false, kAnyAlign = false;
  static constexpr int kStages = 3;
  static constexpr int min_blocks(int D) { return D <= 128 ? 3 : 1; }
  template <int D>
  struct Lane {
    static constexpr int C = D / 32;
    int code_off;
    __device__ Lane(const CodecDesc&, const float*, int lane, int) : code_off(2 + lane * C) {}
    template <class F>
    __device__ void visit(F&& f) const {
      f(*this);
    }
    __device__ void operator()(const uint8_t* rec, int, uint32_t (&hv)[C / 2]) const {
      const __half s = __ushort_as_half(*reinterpret_cast<const uint16_t*>(rec));
      const __half2 s2 = __half2half2(__hmul(s, __float2half(256.f)));
      const uint16_t* q = reinterpret_cast<const uint16_t*>(rec + code_off);
#pragma unroll
      for (int c = 0; c < C / 2; ++c) {
        const uint32_t t = __byte_perm(static_cast<uint32_t>(q[c]), 0u, 0x1404);  // bytes [0, c0, 0, c1]
        const uint32_t bits = (t & 0x80008000u) | ((t >> 1) & 0x3F803F80u);
        const __half2 x = __hmul2(*reinterpret_cast<const __half2*>(&bits), s2);
        hv[c] = *reinterpret_cast<const uint32_t*>(&x);
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
    __device__ Lane(const CodecDesc&, const float*, int, int) {}
  };
};

}  // namespace tq::cuda::detail
