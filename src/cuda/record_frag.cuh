#pragma once
// The fragment path of the tile tensor-core decode kernel (decode_mma_grouped.cu) for q8_0 /
// q4_0 records: each lane reads its codes straight from the cp.async ring into the mma A
// fragments, with no f16 tile and no ldmatrix (the tile store and the ldmatrix read had been
// half of the shared-memory wavefronts that bounded q8_0).
//
// The order of a product's k index is free as long as both operands share it, and the
// order of the mma rows is free as long as the softmax and the epilogue know it:
//   keys    A[row r][k] with k = 2t, 2t+1, 2t+8, 2t+9 of lane (g, t) taking dims 16kc + 4t
//           .. 4t + 3 of chunk kc: four consecutive codes, one word of the record; the
//           query B fragment's k follows (frag_q_dim).
//   values  A = Vᵀ[row][token slot]: per 32-dim block, lane (g, t) reads the words of dims
//           32b + 4g .. 4g + 3 of its four token slots 2t, 2t+1, 2t+8, 2t+9 and regroups
//           them by byte permutes into two m-tiles: rows g and g + 8 of m-tile 2b + i are
//           dims 32b + 4g + 2i and 32b + 4g + 2i + 1 (frag_v_dim).
//   rows    mma row (and token slot) r holds token frag_row_token<D>(r): at d = 128, 2r for
//           r < 8 and 2r − 15 after, so that the 8 × 4 lanes' word loads of a 34- (q8_0) or
//           18-word (q4_0) record stride hit 32 distinct banks (identity elsewhere: d = 256
//           records are 4 words modulo 32 already).
// Each code becomes an exact f16 integer (the 1024-bias trick of Block32TileRecords) and is
// multiplied by its token's fp16 scale, one rounding, as the tile's was. Value scales are
// zero outside the step's window: a stale ring record may hold an Inf or NaN scale, and
// 0 · NaN would reach the accumulator (a stale key only gives a score the mask drops).
#include <cuda_fp16.h>

#include <cstdint>

namespace tq::cuda::detail {

template <int D>
__host__ __device__ constexpr int frag_row_token(int r) {
  return D == 128 ? (r < 8 ? 2 * r : 2 * r - 15) : r;
}

// Dim of register r (dims d, d + 1) of the query B fragment of chunk kc, lane quad t.
__device__ __forceinline__ int frag_q_dim(int kc, int t, int r) { return 16 * kc + 4 * t + 2 * r; }

// Dim of accumulator row g (+ 8 · hi) of m-tile m.
__device__ __forceinline__ int frag_v_dim(int m, int g, int hi) { return 32 * (m >> 1) + 4 * g + 2 * (m & 1) + hi; }

// The fragment reads of one block code (Q8Code / Q4Code of record_tile.cuh) at head dim D.
template <class Code, int D>
struct Block32Frag {
  static constexpr int kRecordBytes = Code::kBlockBytes * (D / 32);

  // Four code bytes at p: one word load where the block's codes start 4-byte aligned (odd
  // blocks of both codecs: records are a multiple of 4 bytes), two 2-byte loads elsewhere.
  __device__ static uint32_t word(const uint8_t* p, bool aligned) {
    if (aligned) return *reinterpret_cast<const uint32_t*>(p);
    const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
    return h[0] | static_cast<uint32_t>(h[1]) << 16;
  }
  __device__ static bool aligned(int b) { return (Code::kBlockBytes * b + 2) % 4 == 0; }
  __device__ static uint32_t scale_bits(const uint8_t* rec, int b) {
    return *reinterpret_cast<const uint16_t*>(rec + Code::kBlockBytes * b);
  }
  // The two codes in the low bytes (or nibbles) of w as f16 integers, times s.
  __device__ static uint32_t dequant(uint32_t w, uint32_t s) {
    const __half2 x = __hmul2(__hsub2(as_half2(Code::biased_pair(w)), __float2half2_rn(Code::kBias)), as_half2(s));
    return *reinterpret_cast<const uint32_t*>(&x);
  }
  __device__ static __half2 as_half2(uint32_t u) { return *reinterpret_cast<const __half2*>(&u); }

  // A fragment of key chunk kc: rows g and g + 8 are the records r0 and r1.
  __device__ static void keys(const uint8_t* r0, const uint8_t* r1, int kc, int t, uint32_t (&a)[4]) {
    const int b = kc >> 1, j = 16 * (kc & 1);
    const int off = Code::kBlockBytes * b + 2 + Code::byte_of(j) + 4 * t, shift = Code::shift_of(j);
    const uint32_t w0 = word(r0 + off, aligned(b)) >> shift, w1 = word(r1 + off, aligned(b)) >> shift;
    const uint32_t s0 = scale_bits(r0, b), s1 = scale_bits(r1, b);
    a[0] = dequant(w0, s0 | s0 << 16);
    a[2] = dequant(w0 >> 16, s0 | s0 << 16);
    a[1] = dequant(w1, s1 | s1 << 16);
    a[3] = dequant(w1 >> 16, s1 | s1 << 16);
  }

  // The value scales of block b of token slots (2t, 2t+1) in s[0] and (2t+8, 2t+9) in s[1];
  // keep bit x: slot x attended.
  __device__ static void value_scales(const uint8_t* const (&rec)[4], int b, unsigned keep, uint32_t (&s)[2]) {
    uint32_t v[4];
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      v[x] = scale_bits(rec[x], b);
      v[x] = keep >> x & 1u ? v[x] : 0u;
    }
    s[0] = v[0] | v[1] << 16;
    s[1] = v[2] | v[3] << 16;
  }

  // A fragments of m-tiles 2b and 2b + 1 from the records of token slots 2t, 2t+1, 2t+8,
  // 2t+9; lane quad g reads code bytes at `byte` (Code::byte_of(4g)) shifted by `shift`.
  __device__ static void values(const uint8_t* const (&rec)[4], int b, int byte, int shift, const uint32_t (&s)[2],
                                uint32_t (&a)[2][4]) {
    const int off = Code::kBlockBytes * b + 2 + byte;
    uint32_t w[4];
#pragma unroll
    for (int x = 0; x < 4; ++x) w[x] = word(rec[x] + off, aligned(b)) >> shift;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      // [w0 byte 2i, w1 byte 2i, w0 byte 2i+1, w1 byte 2i+1]: dim 4g + 2i of slots 2t, 2t+1
      // in the low half, dim 4g + 2i + 1 in the high one.
      const uint32_t sel = i ? 0x7362u : 0x5140u;
      const uint32_t lo = __byte_perm(w[0], w[1], sel), hi = __byte_perm(w[2], w[3], sel);
      a[i][0] = dequant(lo, s[0]);
      a[i][1] = dequant(lo >> 16, s[0]);
      a[i][2] = dequant(hi, s[1]);
      a[i][3] = dequant(hi >> 16, s[1]);
    }
  }
};

// Sink tokens' exact value rows (f32, code space; token j's dim d at rows[j · stride + d],
// rounded to f16 as the tile's) over the halves of the A fragments of block b that hold
// token slot x (slot token tok[x]) for each slot in `sink` (bit x).
__device__ inline void sink_value_fragments(const float* rows, int64_t stride, const int (&tok)[4], unsigned sink,
                                            int b, int g, uint32_t (&a)[2][4]) {
#pragma unroll
  for (int x = 0; x < 4; ++x) {
    if (!(sink >> x & 1u)) continue;
    const float* row = rows + tok[x] * stride + 32 * b + 4 * g;
    const int reg = x >> 1, hi = x & 1;  // slots 2t, 2t+1 in registers 0 / 1, 2t+8, 2t+9 in 2 / 3
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const uint32_t h = __half_as_ushort(__float2half_rn(row[2 * i + r]));
        uint32_t& w = a[i][2 * reg + r];
        w = hi ? (w & 0x0000FFFFu) | h << 16 : (w & 0xFFFF0000u) | h;
      }
  }
}

}  // namespace tq::cuda::detail
