#pragma once
// The end of a decode split CTA, shared by the SIMT and tensor-core kernels: each warp
// left its running max (cm, log2 units), sum (cl) and unnormalized accumulator (cacc) in
// shared memory; merge the warps and write the split's partial output and log-sum-exp.
#include <cstdint>

#include "decode_args.h"

namespace tq::cuda::detail {

// cm, cl: [kWarps][G]; cacc: [kWarps][G][D] for the G query heads of rows qrow...
// Call after a barrier; all threads of the CTA take part.
template <int D, int kWarps>
__device__ inline void write_split_partials(const float* cm, const float* cl, const float* cacc, int G,
                                            const DecodeArgs& a, int64_t qrow, int split, int tid) {
  for (int e = tid; e < G * D; e += kWarps * 32) {
    const int g = e / D, i = e % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, cm[w * G + g]);
    float L = 0.f, o = 0.f;
    if (M != -INFINITY)
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float f = exp2f(cm[w * G + g] - M);
        L += f * cl[w * G + g];
        o += f * cacc[(w * G + g) * D + i];
      }
    const int64_t row = (qrow + g) * a.num_splits + split;
    a.part_o[row * D + i] = M == -INFINITY ? 0.f : o / L;
    if (i == 0) a.part_lse[row] = M == -INFINITY ? -INFINITY : M + log2f(L);
  }
}

}  // namespace tq::cuda::detail
