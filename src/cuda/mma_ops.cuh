#pragma once
// Warp-level tensor-core primitives and the online softmax shared by the two tensor-core decode
// kernels (decode_mma.cu: uniform-width mse records; decode_mma_grouped.cu: calibrated
// records). Inline PTX for sm_80+.
#include <cuda_fp16.h>

#include <cstdint>

namespace tq::cuda::detail {

// D += A·B, m16n8k16, f16 operands, f32 accumulators (A row-major, B column-major).
__device__ inline void mma16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Transpose of an 8×8 f16 matrix held one half2 per lane (row lane/4, columns
// 2·(lane%4) + {0, 1}), in the same layout.
__device__ inline uint32_t transpose8x8(uint32_t x) {
  uint32_t y;
  asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}

// 2^x as one MUFU.EX2: exp2f's care for results below 2^-126 (a compare, a halving and a
// squaring per call) cost 18 instructions per step; such weights vanish next to the
// maximum's weight of 1 anyway, and 2^-inf is still 0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ inline uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

}  // namespace tq::cuda::detail

namespace tq::cuda::detail {

// Online base-2 softmax over one step's score fragment of a tensor-core split kernel:
// s[0..1] = token g, heads 2t and 2t+1; s[2..3] = token g + 8 (-inf past the sequence
// and before a window's start).
// Updates the running maxima and this thread's sums, and returns the rescale factors
// (exactly 1 when a head's maximum stays) and the weights.
__device__ __forceinline__ void mma_softmax_step(const float (&s)[4], float (&m_run)[2], float (&l_run)[2],
                                                 float (&alpha)[2], float (&p)[4]) {
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float mt = fmaxf(s[hh], s[2 + hh]);
    mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 4));
    mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 8));
    mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 16));
    const float m_new = fmaxf(m_run[hh], mt);  // finite: every step holds a visible token
    alpha[hh] = m_new > m_run[hh] ? fast_exp2(m_run[hh] - m_new) : 1.f;
    p[hh] = fast_exp2(s[hh] - m_new);
    p[2 + hh] = fast_exp2(s[2 + hh] - m_new);
    l_run[hh] = l_run[hh] * alpha[hh] + (p[hh] + p[2 + hh]);
    m_run[hh] = m_new;
  }
}

// Value accumulators (heads 2t, 2t+1 in columns 0/2 and 1/3) rescaled by alpha; skipped
// when no head's maximum moved in the warp.
template <int KC>
__device__ __forceinline__ void mma_rescale(float (&acc)[KC][4], const float (&alpha)[2]) {
  if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
    for (int m = 0; m < KC; ++m) {
      acc[m][0] *= alpha[0];
      acc[m][1] *= alpha[1];
      acc[m][2] *= alpha[0];
      acc[m][3] *= alpha[1];
    }
  }
}

// The warp's softmax state of heads 2t, 2t+1 into cm / cl ([warps][G]) for
// write_split_partials: sums over the 8 quads' tokens, written by quad 0.
__device__ __forceinline__ void mma_store_softmax_state(const float (&m_run)[2], const float (&l_run)[2], int G,
                                                        int warp, int lane, float* cm, float* cl) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float l = l_run[hh];
    l += __shfl_xor_sync(0xffffffffu, l, 4);
    l += __shfl_xor_sync(0xffffffffu, l, 8);
    l += __shfl_xor_sync(0xffffffffu, l, 16);
    if (g == 0 && 2 * t + hh < G) {
      cm[warp * G + 2 * t + hh] = m_run[hh];
      cl[warp * G + 2 * t + hh] = l;
    }
  }
}

}  // namespace tq::cuda::detail
