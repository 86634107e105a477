#pragma once
// Pieces of the warp-per-vector quantize kernels (quantize_warp.cu, quantize_dense_mma.cu):
// inputs staged in shared memory by cp.async, a lane's slice of a staged vector, and a
// slot's record address in the pool.
#include "copy_async.cuh"
#include "dtype_device.cuh"
#include "quantize_args.h"
#include "range_device.cuh"

namespace tq::cuda::detail {

constexpr unsigned kFull = 0xffffffffu;

// Lane's E consecutive inputs [lane*E, lane*E + E) of one staged vector (shared memory,
// 16-byte aligned rows).
template <int E>
__device__ inline void load_lane(const void* base, int64_t i, int dtype, float* out) {
  if (dtype == 0) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
    if constexpr (E == 2) {
      const float2 f = *reinterpret_cast<const float2*>(p);
      out[0] = f.x, out[1] = f.y;
    } else {
#pragma unroll
      for (int q = 0; q < E / 4; ++q) {
        const float4 f = p[q];
        out[4 * q] = f.x, out[4 * q + 1] = f.y, out[4 * q + 2] = f.z, out[4 * q + 3] = f.w;
      }
    }
    return;
  }
  uint32_t w[E / 2];
  const uint16_t* p = static_cast<const uint16_t*>(base) + i;
  if constexpr (E == 2) {
    w[0] = *reinterpret_cast<const uint32_t*>(p);
  } else if constexpr (E == 4) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    w[0] = u.x, w[1] = u.y;
  } else {
#pragma unroll
    for (int q = 0; q < E / 8; ++q) {
      const uint4 u = reinterpret_cast<const uint4*>(p)[q];
      w[4 * q] = u.x, w[4 * q + 1] = u.y, w[4 * q + 2] = u.z, w[4 * q + 3] = u.w;
    }
  }
  unpack_16bit_pairs<E / 2>(w, dtype, out);
}

// Starts copying the raw inputs of tokens [t0, t0 + n) of `head` into `in` (row j at
// j * pitch bytes): 16-byte cp.async chunks when the inputs are aligned for them (they
// land by the caller's cp_async_wait), element copies otherwise (done on return).
template <int D>
__device__ inline void stage_inputs_async(const QuantizeArgs& a, int side, int head, int t0, int n, uint8_t* in,
                                          int pitch, int lane) {
  const int shift = a.dtype == 0 ? 2 : 1;  // log2 of the element size
  const uint8_t* src = static_cast<const uint8_t*>(a.src[side]);
  const int64_t stride = a.token_stride << shift, first = (t0 * a.token_stride + int64_t{head} * D) << shift;
  if (a.vector_loads) {
    constexpr int kLogD = D == 64 ? 6 : D == 128 ? 7 : 8;
    static_assert(D == 1 << kLogD, "head dims are powers of two");
    const int chunk_shift = kLogD + shift - 4;  // log2 of the row's 16-byte chunks
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(in));
    for (int c = lane; c < n << chunk_shift; c += 32) {
      const int j = c >> chunk_shift, o = (c & ((1 << chunk_shift) - 1)) * 16;
      cp_async16(dst + j * pitch + o, src + first + j * stride + o);
    }
    cp_async_commit();
  } else if (shift == 2) {
    for (int e = lane; e < n * D; e += 32)
      *reinterpret_cast<uint32_t*>(in + (e / D) * pitch + 4 * (e % D)) =
          *reinterpret_cast<const uint32_t*>(src + first + (e / D) * stride + 4 * (e % D));
  } else {
    for (int e = lane; e < n * D; e += 32)
      *reinterpret_cast<uint16_t*>(in + (e / D) * pitch + 2 * (e % D)) =
          *reinterpret_cast<const uint16_t*>(src + first + (e / D) * stride + 2 * (e % D));
  }
}

// stage_inputs_async, returning with the copies landed and visible to the whole warp.
template <int D>
__device__ inline void stage_inputs(const QuantizeArgs& a, int side, int head, int t0, int n, uint8_t* in, int pitch,
                                    int lane) {
  stage_inputs_async<D>(a, side, head, t0, n, in, pitch, lane);
  cp_async_wait<0>();
  __syncwarp();
}

// Whether the warp's vector (lane's E consecutive inputs v, coordinates lane·E + e) holds a
// NaN or Inf: such inputs are refused (docs/FORMATS.md, "Range"), the first bad
// coordinate reported and the count raised. Warp-uniform.
template <int E>
__device__ inline bool refuse_nonfinite(const QuantizeArgs& a, const float (&v)[E], int token, int side, int head,
                                        int lane) {
  int bad = E;
  float bad_x = 0.f;  // not v[bad]: a variable index would put v in local memory
#pragma unroll
  for (int e = E - 1; e >= 0; --e)
    if (!isfinite(v[e])) bad = e, bad_x = v[e];
  if (!__any_sync(kFull, bad < E)) return false;
  if (bad < E) note_bad_value(a.status, token, side, head, lane * E + bad, bad_x);
  if (lane == 0) atomicAdd(&a.status->nonfinite, 1ull);
  return true;
}

// Where a slot's record of `head` lives in the side's pool.
__device__ inline uint8_t* record_at(const QuantizeArgs& a, int side, int head, int slot, int rb) {
  const int64_t block = a.block_shift >= 0 ? slot >> a.block_shift : slot / a.block_tokens;
  return a.pool[side] + block * a.block_bytes[side] + (head * a.block_tokens + (slot - block * a.block_tokens)) * rb;
}

// The warp's n staged records (record r at staged + r * pitch) into the pool, token by
// token, in words as wide as the pool's alignment allows; only records whose bit
// r * written_stride is set in `written` (a warp-uniform mask) are stored, and lane r < n
// holds token r's destination. (A lane storing its own slice of a record straight into the
// pool had made every store touch 32 sectors: q8_0 at 262K vectors took 217 us against 79.)
__device__ inline void copy_staged_records(const QuantizeArgs& a, int side, int rb, const uint8_t* staged, int pitch,
                                           int n, unsigned written, int written_stride, uint8_t* my_dst, int lane) {
  const uint64_t align = reinterpret_cast<uintptr_t>(a.pool[side]) | static_cast<uint64_t>(a.block_bytes[side]) |
                         static_cast<uint64_t>(rb);
  auto copy_out = [&](auto word) {
    using W = decltype(word);
    const int words = rb / static_cast<int>(sizeof(W));
    for (int r = 0; r < n; ++r) {
      W* to = reinterpret_cast<W*>(__shfl_sync(kFull, reinterpret_cast<unsigned long long>(my_dst), r));
      const W* from = reinterpret_cast<const W*>(staged + r * pitch);
      if ((written >> (r * written_stride)) & 1)  // uniform
        for (int o = lane; o < words; o += 32) to[o] = from[o];
    }
  };
  if (align % 8 == 0)
    copy_out(uint2{});
  else if (align % 4 == 0)
    copy_out(uint32_t{});
  else
    copy_out(uint16_t{});
}

}  // namespace tq::cuda::detail
