// Split kernel of decode attention on tensor cores, for keys and values that are both
// uniform-width mse codes (turbo*, rht*, iso*, ... at 2, 3 or 4 bits) with one codebook.
//
// One CTA of 4 warps per (context split, KV head, sequence), as the CUDA-core kernel;
// each warp streams steps of 16 tokens (K and V records through a cp.async ring) and
// does per step, with mma.sync m16n8k16 (f16 operands, f32 accumulators):
//   scores  Sᵀ[token][head] = K[token] · Q'[head]  A = K (16 tokens), B = Q'ᵀ (the G
//                                                   query heads as the 8 columns);
//   values  Oᵀ[dim][head] += V[token][dim] P'[head][token]
//                                                   A = Vᵀ (16 dims × 16 tokens), B = P'ᵀ.
// The softmax runs on the score fragments (per head: the quad's two columns); two
// movmatrix transposes turn the probabilities into the B fragments of the value product.
// Codes become f16 operands through a pair table in shared memory: entry i | j << bits
// holds (c[i], c[j]) as a half2, one copy per lane (conflict-free), so one load yields
// two coordinates of one record (a key operand register as it is; for values two such
// registers of two tokens are regrouped by byte permutes). Coordinates are permuted
// freely (q·k and the rotated-space value sum do not depend on the order): thread t of a
// quad takes the contiguous key codes [t·D/4, (t+1)·D/4) and quad g the value codes
// [g·D/8, (g+1)·D/8), so each operand is a compile-time bit field of a few registers.
// Norms stay f32: the key norm scales the score, the value norm is folded into P'.
// This path is integer-issue-bound (shifts, masks, permutes at half the FP32 rate);
// see docs/CUDA.md for the measured profile.
#include <cuda_fp16.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "copy_async.cuh"
#include "cuda_check.h"
#include "decode_args.h"
#include "decode_merge.cuh"
#include "decode_single.cuh"
#include "direct_queries.cuh"
#include "dtype_device.cuh"
#include "mma_ops.cuh"
#include "pdl.cuh"
#include "split_work.cuh"
#include "turboquant/head_dim.h"
#include "turboquant/quant_traits.h"

namespace tq::cuda::detail {

namespace {

constexpr int kWarps = kMmaWarps, kTok = kMmaTileTokens;
constexpr int kStages = 4;
constexpr int kSlack = 16;  // bit runs read up to 8 bytes past the last record

__host__ __device__ constexpr int round16(int x) { return (x + 15) & ~15; }

// Shared memory of one CTA: per warp kStages stages of [16 K records][16 V records]
// (each area padded to 16 bytes plus slack), reused at the end to merge the warps.
__host__ __device__ constexpr int area_bytes(int rb) { return round16(kTok * rb + kSlack); }
__host__ __device__ constexpr int mma_smem_bytes(int D, int G, int rb) {
  return kWarps * kStages * 2 * area_bytes(rb) > static_cast<int>(sizeof(float)) * kWarps * G * (D + 2)
             ? kWarps * kStages * 2 * area_bytes(rb)
             : static_cast<int>(sizeof(float)) * kWarps * G * (D + 2);
}

// NW words of a little-endian bit string at an aligned shared-memory address: NW + 1
// loads and a funnel shift by sh (0, 8, 16 or 24 bits; counted modulo 32, so a packed
// shift field needs no mask). Volatile: the ring is filled by cp.async, which the
// compiler does not see as a store.
template <int NW>
__device__ __forceinline__ void load_run_sh(uint32_t addr, uint32_t sh, uint32_t (&r)[NW]) {
  uint32_t x[NW + 1];
#pragma unroll
  for (int j = 0; j <= NW; ++j) asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(x[j]) : "r"(addr + 4 * j));
#pragma unroll
  for (int j = 0; j < NW; ++j) r[j] = __funnelshift_r(x[j], x[j + 1], sh);
}

__device__ __forceinline__ float load_half_sh(uint32_t addr) {
  unsigned short h;
  asm volatile("ld.shared.u16 %0, [%1];\n" : "=h"(h) : "r"(addr));
  return __half2float(__ushort_as_half(h));
}

// Bits [pos, pos + len) of a run moved to start at bit `to` (other bits are garbage).
// Every argument is a compile-time constant once the callers' loops are unrolled.
template <int NW>
__device__ __forceinline__ uint32_t field_to(const uint32_t (&r)[NW], int pos, int len, int to) {
  const int w = pos >> 5, off = pos & 31;
  if (off + len > 32) return __funnelshift_r(r[w], r[w + 1 < NW ? w + 1 : w], off - to);
  return off >= to ? r[w] >> (off - to) : r[w] << (to - off);
}

// The pair table entry at byte offset off (entry * 128 + lane * 4).
__device__ __forceinline__ uint32_t lut_at(const uint32_t* lut, uint32_t off) {
  return *reinterpret_cast<const uint32_t*>(reinterpret_cast<const unsigned char*>(lut) + off);
}

// 96 registers for d <= 128: five CTAs (20 warps) per SM without spills; four CTAs
// (116 registers) and six (85, spilling) measured no faster at batch 8 / 64K.
template <int D, int B>
constexpr int kMmaMinBlocks = D <= 128 ? 5 : 2;

// One pair-table operand: the 2B-bit field at bit `pos` of a run, as (c[lo], c[hi]).
template <int B, int NW>
__device__ __forceinline__ uint32_t pair_at(const uint32_t* lut, const uint32_t (&run)[NW], int pos, uint32_t lane4) {
  constexpr uint32_t M2 = (1u << (2 * B)) - 1u;
  return lut_at(lut, (field_to(run, pos, 2 * B, 7) & (M2 << 7)) | lane4);
}

// kLaunch (decode_args.h): the single launch's prologue and epilogue (decode_single.cuh)
// are compiled in only there: the three-launch instance keeps the register allocation it
// had without them.
template <int D, int B, SplitLaunch kLaunch>
__global__ void __launch_bounds__(kWarps * 32, (kMmaMinBlocks<D, B>)) decode_mma_kernel(const __grid_constant__ DecodeArgs a) {
  constexpr int KC = D / 16;          // k-chunks of the scores = m-tiles of the values
  constexpr int RB = 2 + D * B / 8;   // record bytes (fp16 norm + codes)
  constexpr int KB = D * B / 32;      // bytes of a thread's key run (D/4 codes)
  constexpr int VB = D * B / 64;      // bytes of a thread's value run (D/8 codes)
  constexpr int NWK = (KB + 3) / 4, NWV = (VB + 3) / 4;
  constexpr int AREA = area_bytes(RB), STAGE = 2 * AREA;
  constexpr int NCH = RB / 2;         // 16-byte chunks in 8 records
  constexpr uint32_t M1 = (1u << B) - 1u;
  __shared__ uint32_t lut[(1 << (2 * B)) * 32];
  __shared__ uint4 cp_desc[kWarps * 32];
  __shared__ uint4 rd_desc[2 * kWarps * 32];
  extern __shared__ __align__(16) unsigned char smem[];

  const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int G = a.group;
  unsigned char* ring = smem + warp * kStages * STAGE;
  const uint32_t lane4 = static_cast<uint32_t>(lane) * 4u;

  for (int e = tid; e < (1 << (2 * B)) * 32; e += kWarps * 32) {
    const int i = e >> 5;
    lut[e] = pack_half2(a.kc.levels_hi[i & M1], a.kc.levels_hi[i >> B]);
  }

  const int64_t qrow = static_cast<int64_t>(b) * a.n_kv * G + h * G;
  // Direct: launched (PDL) straight behind whatever the stream ran before, which may have
  // written the lengths, tables or records: wait for it before the first read of them.
  if constexpr (kLaunch == SplitLaunch::direct_queries) pdl_wait();
  const SplitWork work = split_work(a, b, split, warp, kWarps, kTok);
  const int seq_len = work.seq_len, tb = work.tb, te = work.te, my_count = work.my_count;
  const int32_t* table = a.block_tables + static_cast<int64_t>(b) * a.max_blocks;

  // Copy roles: a step's 16 tokens are two runs of 8 records, each inside one block
  // (block_tokens % 8 == 0). Lanes 0-7 copy the keys of run 0, 8-15 keys of run 1,
  // 16-23 and 24-31 the values; a run past the sequence is not read (its block may be
  // unassigned). Each lane looks up only its run's block, one step ahead of its use.
  const int run_half = (lane >> 3) & 1, chunk = lane & 7;
  const bool run_v = lane >= 16;
  // Runs at or past cp_end are not read: past the sequence, or past this split (the
  // warp's tile for step k >= my_count is >= te).
  const int cp_end = min(seq_len, te * kTok);
  const int bt = a.block_tokens, bshift = a.block_shift;
  int cp_pos = (tb + warp) * kTok + 8 * run_half;  // position of the next run to copy
  // The lane's copy constants (chunk base in head h's slice of block 0, block stride,
  // ring destination) live in shared memory and are read with one vector load per step:
  // held in registers under the 96-register cap they were recomputed from the thread
  // index every step instead.
  {
    const uint64_t base = reinterpret_cast<uint64_t>((run_v ? a.vpool : a.kpool) + chunk * 16 +
                                                     static_cast<int64_t>(h) * bt * RB);
    cp_desc[tid] = make_uint4(static_cast<uint32_t>(base), static_cast<uint32_t>(base >> 32),
                              static_cast<uint32_t>(run_v ? a.vblock_bytes : a.kblock_bytes),
                              static_cast<uint32_t>(__cvta_generic_to_shared(ring)) + (run_v ? AREA : 0) +
                                  run_half * 8 * RB + chunk * 16);
  }
  const uint32_t cp_desc_addr = static_cast<uint32_t>(__cvta_generic_to_shared(&cp_desc[tid]));
  auto block_at = [&](int p) {
    if (p >= cp_end) return 0;
    return __ldg(table + (bshift >= 0 ? p >> bshift : p / bt));
  };
  // Copies the run at cp_pos (from `block`) into stage `stage`, then advances cp_pos.
  auto issue = [&](int stage, int block) {
    if (cp_pos < cp_end) {
      uint32_t base_lo, base_hi, stride, dst0;
      asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                   : "=r"(base_lo), "=r"(base_hi), "=r"(stride), "=r"(dst0)
                   : "r"(cp_desc_addr));
      const int in_block = bshift >= 0 ? cp_pos & (bt - 1) : cp_pos % bt;
      const uint64_t src = (static_cast<uint64_t>(base_hi) << 32 | base_lo) +
                           static_cast<uint64_t>(static_cast<uint32_t>(block)) * stride +
                           static_cast<uint32_t>(in_block * RB);
      const uint32_t dst = dst0 + stage * STAGE;
#pragma unroll
      for (int i = 0; i < (NCH + 7) / 8; ++i)
        if (chunk + 8 * i < NCH)
          cp_async16(dst + 128 * i, reinterpret_cast<const void*>(src + 128 * i));
    }
    cp_async_commit();  // empty groups keep the wait count uniform
    cp_pos += kWarps * kTok;
  };

  // Softmax state of the quad's two heads 2t and 2t+1 (l: this thread's tokens only).
  // Where this thread's bit runs start in a stage (aligned word, bit shift): the key runs
  // of tokens g and g + 8, the value runs of tokens 2t, 2t+1 (and + 8).
  const int ko = g * RB + 2 + t * KB, vo0 = 2 * t * RB + 2 + g * VB, vo1 = vo0 + RB;
  const int ko_al = ko & ~3, vo0_al = vo0 & ~3, vo1_al = vo1 & ~3;
  const int ko_sh = (ko & 3) * 8, vo0_sh = (vo0 & 3) * 8, vo1_sh = (vo1 & 3) * 8;
  // These, the lane's pair-table offset and the limits of its tokens (the sequence's end
  // and the window's start, both shifted by g) are read from shared memory each step, as
  // the copy constants: the compiler had rebuilt them from the thread index every step
  // (~15 instructions).
  {
    const uint32_t ring_sa = static_cast<uint32_t>(__cvta_generic_to_shared(ring));
    rd_desc[tid] = make_uint4(ring_sa + ko_al, ring_sa + AREA + vo0_al, ring_sa + AREA + vo1_al, ring_sa + g * RB);
    rd_desc[kWarps * 32 + tid] = make_uint4(ko_sh | vo0_sh << 8 | vo1_sh << 16, lane4, seq_len - g,
                                            static_cast<uint32_t>(work.lo - g));
  }
  const uint32_t rd_desc_addr = static_cast<uint32_t>(__cvta_generic_to_shared(&rd_desc[tid]));
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  float acc[KC][4];
#pragma unroll
  for (int mt = 0; mt < KC; ++mt) acc[mt][0] = acc[mt][1] = acc[mt][2] = acc[mt][3] = 0.f;

  __syncthreads();  // pair table ready
  // Rotated queries as B fragments: column g is query head g (zero for g >= G). In
  // k-chunk kc thread t holds its dims t·D/4 + 4kc + {0,1} and {2,3}.
  uint32_t qb[KC][2];
  constexpr bool single = kSingleDims<D> && kLaunch == SplitLaunch::single;
  if constexpr (single) {  // this CTA rotates them (in the rings, before any copy lands there)
    const SingleQueries q = single_rotate_queries<D>(a, b, h, smem);
    const int c = t * (D / 4);
#pragma unroll
    for (int kc = 0; kc < KC; ++kc) {
      qb[kc][0] = g < G ? pack_half2(q(g, c + 4 * kc) * a.q_scale, q(g, c + 4 * kc + 1) * a.q_scale) : 0u;
      qb[kc][1] = g < G ? pack_half2(q(g, c + 4 * kc + 2) * a.q_scale, q(g, c + 4 * kc + 3) * a.q_scale) : 0u;
    }
    __syncthreads();
  }
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s, block_at(cp_pos));
  int next_block = block_at(cp_pos);  // step kStages - 1

  if constexpr (kLaunch == SplitLaunch::direct_queries) {  // keys without a rotation
    int off[2 * KC];
#pragma unroll
    for (int k = 0; k < 2 * KC; ++k) off[k] = 2 * k;  // dims t·D/4 + 4kc + {0, 1} and {2, 3}
    direct_query_fragments<D>(a, b * a.query_stride + (h * G + (g < G ? g : 0)) * D + t * (D / 4), off, g < G, qb);
  } else if constexpr (!single) {
    pdl_wait();  // the rotated queries come from the prepare kernel
    const float* qp = a.q_rot + (qrow + (g < G ? g : 0)) * D + t * (D / 4);
#pragma unroll
    for (int kc = 0; kc < KC; ++kc) {
      const float4 v = *reinterpret_cast<const float4*>(qp + 4 * kc);
      qb[kc][0] = g < G ? pack_half2(v.x, v.y) : 0u;
      qb[kc][1] = g < G ? pack_half2(v.z, v.w) : 0u;
    }
  }

  for (int k = 0; k < my_count; ++k) {
    const int block = next_block;
    next_block = block_at(cp_pos + kWarps * kTok);  // step k + kStages; its latency hides behind this step
    issue((k + kStages - 1) % kStages, block);
    cp_async_wait<kStages - 1>();
    __syncwarp();
    uint32_t a_k, a_v0, a_v1, a_n, shp, l4, lim0, lo0;
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(a_k), "=r"(a_v0), "=r"(a_v1), "=r"(a_n)
                 : "r"(rd_desc_addr));
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(shp), "=r"(l4), "=r"(lim0), "=r"(lo0)
                 : "r"(rd_desc_addr + kWarps * 32 * 16));
    const uint32_t st = (k % kStages) * STAGE;
    const int tok0 = (tb + warp + k * kWarps) * kTok;

    // Scores: rows g and g + 8 of the A fragments are tokens g and g + 8. Two
    // accumulator chains (even / odd k-chunks) halve the mma latency chain.
    float sc[4];
    {
      uint32_t k0[NWK], k1[NWK];
      load_run_sh<NWK>(a_k + st, shp, k0);
      load_run_sh<NWK>(a_k + st + 8 * RB, shp, k1);
      float c2[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
      for (int kc = 0; kc < KC; ++kc) {
        const int p0 = (2 * kc) * 2 * B, p1 = (2 * kc + 1) * 2 * B;
        mma16816(c2[kc & 1], pair_at<B>(lut, k0, p0, l4), pair_at<B>(lut, k1, p0, l4), pair_at<B>(lut, k0, p1, l4),
                 pair_at<B>(lut, k1, p1, l4), qb[kc][0], qb[kc][1]);
      }
#pragma unroll
      for (int c = 0; c < 4; ++c) sc[c] = c2[0][c] + c2[1][c];
    }
    // sc = S[token g][head 2t, 2t+1], S[token g+8][head 2t, 2t+1]. Valid: inside
    // [lo, seq_len) (without a window lo0 = -g, always passed).
    const int lim = static_cast<int>(lim0), lo = static_cast<int>(lo0);
    const bool valid0 = tok0 < lim && tok0 >= lo, valid1 = tok0 + 8 < lim && tok0 + 8 >= lo;
    // Stale norms of tokens past the sequence are replaced, never multiplied.
    const float kn0r = load_half_sh(a_n + st), kn1r = load_half_sh(a_n + st + 8 * RB);
    const float vn0r = load_half_sh(a_n + st + AREA), vn1r = load_half_sh(a_n + st + AREA + 8 * RB);
    const float kn0 = valid0 ? kn0r : 0.f, kn1 = valid1 ? kn1r : 0.f;
    const float vn0 = valid0 ? vn0r : 0.f, vn1 = valid1 ? vn1r : 0.f;
    const float s[4] = {valid0 ? sc[0] * kn0 : -INFINITY, valid0 ? sc[1] * kn0 : -INFINITY,
                        valid1 ? sc[2] * kn1 : -INFINITY, valid1 ? sc[3] * kn1 : -INFINITY};
    float alpha[2], p[4];
    mma_softmax_step(s, m_run, l_run, alpha, p);
    // P'ᵀ as B fragments (head g; tokens 2t, 2t+1 and 8+2t, 9+2t): the probabilities of
    // tokens g and g+8 for heads 2t, 2t+1, value norms folded in (zero past the sequence,
    // where records may be stale), transposed as two 8×8 f16 tiles.
    const uint32_t pb0 = transpose8x8(pack_half2(p[0] * vn0, p[1] * vn0));
    const uint32_t pb1 = transpose8x8(pack_half2(p[2] * vn1, p[3] * vn1));
    // The value accumulators hold the same heads 2t and 2t+1. Skipped when no head's
    // maximum moved.
    mma_rescale<KC>(acc, alpha);
    // Values: m-tile m has dims g·D/8 + 2m (row g) and + 1 (row g + 8); k = tokens. A pair
    // entry gives both dims of one token; byte permutes pair the tokens instead.
    uint32_t vr[4][NWV];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      load_run_sh<NWV>(((j & 1) ? a_v1 : a_v0) + st + 8 * RB * (j >> 1), (j & 1) ? shp >> 16 : shp >> 8, vr[j]);
#pragma unroll
    for (int m = 0; m < KC; ++m) {
      const uint32_t x0 = pair_at<B>(lut, vr[0], 2 * m * B, l4), x1 = pair_at<B>(lut, vr[1], 2 * m * B, l4);
      const uint32_t x2 = pair_at<B>(lut, vr[2], 2 * m * B, l4), x3 = pair_at<B>(lut, vr[3], 2 * m * B, l4);
      mma16816(acc[m], __byte_perm(x0, x1, 0x5410), __byte_perm(x0, x1, 0x7632), __byte_perm(x2, x3, 0x5410),
               __byte_perm(x2, x3, 0x7632), pb0, pb1);
    }
    __syncwarp();  // the stage is consumed before the next issue overwrites it
  }
  cp_async_wait<0>();
  pdl_trigger();  // the reduce kernel may start launching

  __syncthreads();  // rings are free: reuse them to merge the warps
  float* cm = reinterpret_cast<float*>(smem);
  float* cl = cm + kWarps * G;
  float* cacc = cl + kWarps * G;
  mma_store_softmax_state(m_run, l_run, G, warp, lane, cm, cl);
#pragma unroll
  for (int m = 0; m < KC; ++m) {
    const int dim = g * (D / 8) + 2 * m;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int head = 2 * t + hh;
      if (head < G) {
        cacc[(warp * G + head) * D + dim] = acc[m][hh];
        cacc[(warp * G + head) * D + dim + 1] = acc[m][2 + hh];
      }
    }
  }
  __syncthreads();
  if constexpr (single) return single_finish<D, kWarps>(cm, cl, cacc, a, b, h, smem);
  write_split_partials<D, kWarps>(cm, cl, cacc, G, a, qrow, split, tid);
}

using Kernel = void (*)(DecodeArgs);

// The instance of a launch mode (single: head_dim <= 128).
Kernel kernel_for(int d, int bits, SplitLaunch mode = SplitLaunch::prepared) {
  return dispatch_head_dim(d, "tensor-core decode kernel", [&]<int D>() -> Kernel {
    auto of = [&]<int B>() -> Kernel {
      if constexpr (kSingleDims<D>)
        if (mode == SplitLaunch::single) return decode_mma_kernel<D, B, SplitLaunch::single>;
      if (mode == SplitLaunch::direct_queries) return decode_mma_kernel<D, B, SplitLaunch::direct_queries>;
      return decode_mma_kernel<D, B, SplitLaunch::prepared>;
    };
    switch (bits) {
      case 2: return of.template operator()<2>();
      case 3: return of.template operator()<3>();
      case 4: return of.template operator()<4>();
    }
    throw Error("tensor-core decode kernel: " + std::to_string(bits) + "-bit codes are not compiled (2, 3 or 4)");
  });
}

}  // namespace

void ensure_mma_smem(const void* kernel, int bytes) {
  // The limit only grows: a kernel launched with several sizes (head groups, record
  // sizes) keeps the largest set so far. (Caching each size as done had left the limit at
  // the last size set, which broke a later launch of a larger, already-seen size.)
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, int> limit;
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  std::lock_guard<std::mutex> lock(mu);
  int& cur = limit[std::make_pair(kernel, dev)];
  if (bytes <= cur) return;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
             "cudaFuncSetAttribute (tensor-core decode kernel shared memory)");
  // All of the unified L1/shared array as shared memory: the kernels read through cp.async
  // and need no L1, and the default split held them to 4 CTAs per SM.
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100),
             "cudaFuncSetAttribute (tensor-core decode kernel carveout)");
  cur = bytes;
}

int mma_decode_bits(const CodecDesc& k, const CodecDesc& v) {
  auto uniform = [](const CodecDesc& c) {
    return c.kind == QuantKind::mse && quant_traits(c.kind).cuda_mma && c.n_hi == c.dim && c.hi_offset == 2 && c.bits_hi >= 2 && c.bits_hi <= 4 &&
           c.record_bytes == 2 + c.dim * c.bits_hi / 8;
  };
  if (!uniform(k) || !uniform(v) || k.bits_hi != v.bits_hi || k.dim != v.dim) return 0;
  for (int i = 0; i < (1 << k.bits_hi); ++i)
    if (k.levels_hi[i] != v.levels_hi[i]) return 0;
  return k.bits_hi;
}

int mma_occupancy(const void* kernel, int smem, int threads) {
  static std::mutex mu;
  static std::map<std::tuple<int, const void*, int, int>, int> cache;
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  const auto key = std::make_tuple(dev, kernel, smem, threads);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  ensure_mma_smem(kernel, smem);
  int n = 0;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, smem),
             "cudaOccupancyMaxActiveBlocksPerMultiprocessor (tensor-core kernel)");
  n = n > 1 ? n : 1;
  std::lock_guard<std::mutex> lock(mu);
  cache[key] = n;
  return n;
}

int max_block_smem() {
  int dev = 0, limit = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "cudaDeviceGetAttribute");
  return limit;
}

int mma_resident_ctas(int d, int bits, int group, int rbk, int rbv) {
  (void)rbv;  // equal to rbk on this path
  return mma_occupancy(reinterpret_cast<const void*>(kernel_for(d, bits)), mma_smem_bytes(d, group, rbk));
}

int mma_cluster_cap(Kernel kernel, int smem) {
  static std::mutex mu;
  static std::map<std::tuple<int, const void*, int>, int> cache;
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  const auto key = std::make_tuple(dev, reinterpret_cast<const void*>(kernel), smem);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (!pdl_supported()) return cache[key] = 0;
  ensure_mma_smem(reinterpret_cast<const void*>(kernel), smem);
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1),
             "cudaFuncSetAttribute (non-portable cluster size)");
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(kSingleMaxSplits, 1, 1);
  cfg.blockDim = dim3(kWarps * 32);
  cfg.dynamicSmemBytes = smem;
  cudaLaunchAttribute attr = cluster_attribute(kSingleMaxSplits);
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  int clusters = 0;
  check_cuda(cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg), "cudaOccupancyMaxActiveClusters");
  return cache[key] = clusters > 0 ? kSingleMaxSplits : 8;
}

void launch_mma_split(Kernel kernel, int smem, const DecodeArgs& a, int batch, SplitLaunch mode, void* stream,
                      const char* name) {
  ensure_mma_smem(reinterpret_cast<const void*>(kernel), smem);
  const dim3 grid(a.num_splits, a.n_kv, batch), block(kWarps * 32);
  const auto s = static_cast<cudaStream_t>(stream);
  if (mode == SplitLaunch::single)
    launch_clustered(kernel, grid, block, smem, s, a, a.num_splits, name);
  else
    launch_pdl(kernel, grid, block, smem, s, a, name);
}

// Dynamic shared memory of the uniform kernel: the rings (and merge area), and for a
// single launch also its prologue and epilogue.
int uniform_smem(int d, int group, int rb, SplitLaunch mode) {
  const int rings = mma_smem_bytes(d, group, rb);
  return mode == SplitLaunch::single ? std::max(rings, single_smem(d, group, kWarps).total) : rings;
}

int mma_single_cap(int d, int bits, int group, int rb) {
  return mma_cluster_cap(kernel_for(d, bits, SplitLaunch::single), uniform_smem(d, group, rb, SplitLaunch::single));
}

void launch_decode_mma(const DecodeArgs& a, int d, int bits, int batch, SplitLaunch mode, void* stream) {
  launch_mma_split(kernel_for(d, bits, mode), uniform_smem(d, a.group, a.kc.record_bytes, mode), a, batch, mode,
                   stream, "decode_mma_kernel");
}

}  // namespace tq::cuda::detail
