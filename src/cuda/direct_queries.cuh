#pragma once
// The query B fragments of a tensor-core split kernel read straight from
// DecodeArgs::queries (SplitLaunch::direct_queries, decode_args.h: keys without a
// rotation, so no prepare kernel), scaled by q_scale and rounded to f16.
#include <cstdint>

#include "decode_args.h"
#include "dtype_device.cuh"
#include "mma_ops.cuh"

namespace tq::cuda::detail {

// Register k of the lane's fragments (qb[k / 2][k % 2]) takes elements i0 + off[k] and
// + 1 (even) of the queries; `live` false (the lane's column is past the group) gives
// zeros.
template <int D>
__device__ inline void direct_query_fragments(const DecodeArgs& a, int64_t i0, const int (&off)[D / 8], bool live,
                                              uint32_t (&qb)[D / 16][2]) {
  float2 x[D / 8];
  load_element_pairs(a.queries, i0, off, a.queries_dtype, x);
#pragma unroll
  for (int k = 0; k < D / 8; ++k) qb[k / 2][k % 2] = live ? pack_half2(x[k].x * a.q_scale, x[k].y * a.q_scale) : 0u;
}

}  // namespace tq::cuda::detail
