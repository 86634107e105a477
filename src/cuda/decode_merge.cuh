#pragma once
// The end of a decode split CTA, shared by the SIMT and tensor-core kernels: each warp
// left its running max (cm, log2 units), sum (cl) and unnormalized accumulator (cacc) in
// shared memory; merge the warps and write the split's partial output and log-sum-exp.
#include <cstdint>

#include "decode_args.h"

namespace tq::cuda::detail {

// The CTA's result for query head g at coordinate i, from cm, cl: [kWarps][G] and cacc:
// [kWarps][G][D]: the normalized output (x) and the base-2 log-sum-exp (y); 0 and -inf
// when no warp saw a token.
template <int D, int kWarps>
__device__ inline float2 merge_warps(const float* cm, const float* cl, const float* cacc, int G, int g, int i) {
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) M = fmaxf(M, cm[w * G + g]);
  if (M == -INFINITY) return make_float2(0.f, -INFINITY);
  float L = 0.f, o = 0.f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const float f = exp2f(cm[w * G + g] - M);
    L += f * cl[w * G + g];
    o += f * cacc[(w * G + g) * D + i];
  }
  return make_float2(o / L, M + log2f(L));
}

// Writes the split's partial output and log-sum-exp of the G query heads of rows qrow...
// Call after a barrier; all threads of the CTA take part.
template <int D, int kWarps>
__device__ inline void write_split_partials(const float* cm, const float* cl, const float* cacc, int G,
                                            const DecodeArgs& a, int64_t qrow, int split, int tid) {
  for (int e = tid; e < G * D; e += kWarps * 32) {
    const int g = e / D, i = e % D;
    const float2 r = merge_warps<D, kWarps>(cm, cl, cacc, G, g, i);
    const int64_t row = (qrow + g) * a.num_splits + split;
    a.part_o[row * D + i] = r.x;
    if (i == 0) a.part_lse[row] = r.y;
  }
}

}  // namespace tq::cuda::detail
