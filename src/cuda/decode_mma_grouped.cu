// Tile split kernel of decode attention on tensor cores, for keys and values whose records
// do not map to operand bits at compile time: calibrated (grouped) records (tq2.5, tq3,
// tq3.5, tq4) and f16, q8_0, q4_0, fp8 records (q8_0h / q4_0h too: their rotation is the
// prepare and reduce kernels' business), one kind on both sides, sinks included. The
// records of each kind are a policy (record_tile.cuh).
//
// Grid and work split as decode_mma.cu: one CTA of 4 warps per (context split, KV head,
// sequence), each warp streams steps of 16 tokens (two runs of 8 K and V records through a
// cp.async ring). Per step, each lane dequantizes its C = D/32 coordinates of the 16
// records (grouped: level times the group's norm, as the CUDA-core kernel; q8_0 / q4_0:
// code times the block scale; fp8: the code's value times the record's scale) into an f16
// tile [16 tokens][D] in shared memory, K first, and the tensor cores read the tile with
// ldmatrix. f16 records skip that step: the copies put them straight into tile rows in the
// ring, and ldmatrix reads the ring. q8_0 / q4_0 records skip the tile too: each lane reads
// its codes from the ring straight into the mma fragments (record_frag.cuh), in an order of
// dims and tokens the query fragments, the softmax mask and the epilogue follow.
//   scores  Sᵀ[token][head] = K[token] · Q'[head]   A = the K tile, B = Q'ᵀ (8 columns);
//   values  Oᵀ[dim][head] += V[token][dim] P'[head][token]
//                                                   A = the V tile transposed (ldmatrix
//                                                   .trans), B = P'ᵀ.
// Everything stays in the code (rotated) space of the CUDA-core kernel: the prepare
// kernel's q' = R q (P⁻ᵀ q) and the reduce kernel's Rᵀ y (P⁻¹ y + μ) are shared. Tokens past
// the sequence or before a window are zero rows of the value tile (their records may be
// stale: never read as numbers), sink positions come from the sink store (f32 code-space
// rows): their values rounded to f16 in the tile like the records, their scores computed
// in f32 (exact_sink_scores).
#include <cuda_fp16.h>

#include <algorithm>
#include <string>
#include <type_traits>

#include "copy_async.cuh"
#include "cuda_check.h"
#include "decode_args.h"
#include "decode_merge.cuh"
#include "decode_single.cuh"
#include "direct_queries.cuh"
#include "mma_ops.cuh"
#include "pdl.cuh"
#include "record_tile.cuh"
#include "split_work.cuh"
#include "turboquant/head_dim.h"
#include "turboquant/quant_traits.h"

namespace tq::cuda::detail {

namespace {

constexpr int kWarps = kMmaWarps, kTok = kMmaTileTokens;
constexpr int kSlack = 16;  // bit_window reads up to 8 bytes past a record

__host__ __device__ constexpr int round16(int x) { return (x + 15) & ~15; }
// Halves per tile row: 16 bytes of padding put the 8 rows of an ldmatrix in 8 distinct
// bank quads (the row stride is 4 words modulo 32).
__host__ __device__ constexpr int tile_stride(int D) { return D + 8; }

// Dynamic shared memory: [K look-up area][V look-up area][per warp: tile][per warp: ring
// of kStages × (16 K records, 16 V records)]; tiles and rings are reused to merge the warps.
// kDirect (f16): no tile; each ring stage is a K tile and a V tile. kFrag: no tile.
struct TileMmaSmem {
  int lk, lv;      // floats of the look-up areas
  int tiles;       // byte offset of the tiles
  int karea, stage;  // bytes of a stage's K area, of a whole stage
  int ring;        // byte offset of the rings
  int total;
};

template <class R>
__host__ __device__ inline TileMmaSmem tile_mma_smem(int D, int G, int rbk, int rbv, int lk, int lv) {
  TileMmaSmem s;
  s.lk = lk;
  s.lv = lv;
  s.tiles = static_cast<int>(sizeof(float)) * (lk + lv);
  const int tile = kTok * tile_stride(D) * 2;
  if (R::kDirect) {
    s.karea = tile;
    s.stage = 2 * tile;
    s.ring = s.tiles;
  } else {
    s.karea = round16(kTok * rbk + kSlack);
    s.stage = s.karea + round16(kTok * rbv + kSlack);
    s.ring = s.tiles + (R::kFrag ? 0 : kWarps * tile);
  }
  const int end = s.ring + kWarps * R::kStages * s.stage;
  const int merge = s.tiles + static_cast<int>(sizeof(float)) * kWarps * G * (D + 2);
  s.total = end > merge ? end : merge;
  return s;
}

// Four 8×8 f16 matrices from shared memory (lanes 8j..8j+7 give the row addresses of
// matrix j), optionally transposed. The tile is written by ordinary stores before a
// __syncwarp; "memory" keeps the compiler from moving the loads above them.
__device__ inline void ldmatrix_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ inline void ldmatrix_x4_trans(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

// C/2 half2 words into the tile (one 4-, 8- or 16-byte store).
template <int C>
__device__ __forceinline__ void store_half2s(__half* dst, const uint32_t* h) {
  if constexpr (C == 2) {
    *reinterpret_cast<uint32_t*>(dst) = h[0];
  } else if constexpr (C == 4) {
    *reinterpret_cast<uint2*>(dst) = make_uint2(h[0], h[1]);
  } else {
    *reinterpret_cast<uint4*>(dst) = make_uint4(h[0], h[1], h[2], h[3]);
  }
}

// This lane's C coordinates of 16 records (recs, rb bytes each) through a policy's decoder
// into column lane·C of the tile. Batches of 32/C tokens (16 registers) are decoded before
// any is stored: the ring and the tile are both shared memory, so the compiler keeps a load
// after every earlier store, and storing each token as decoded had made the 16 tokens one
// chain of load latencies. Every record is decoded, stale ones too (their bits are masked
// into the tables, their norms may be NaN): rows outside the step's range are zeroed after.
template <int D, class Dec>
__device__ __forceinline__ void decode_rows(const Dec& dec, const unsigned char* recs, int rb, int lane, __half* tile) {
  constexpr int C = D / 32, kBatch = 32 / C < kTok ? 32 / C : kTok;
#pragma unroll
  for (int j0 = 0; j0 < kTok; j0 += kBatch) {
    uint32_t hv[kBatch][C / 2];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) dec(recs + (j0 + j) * rb, j0 + j, hv[j]);
#pragma unroll
    for (int j = 0; j < kBatch; ++j) store_half2s<C>(tile + (j0 + j) * tile_stride(D) + lane * C, hv[j]);
  }
}

// Rows outside [j_lo, n_valid) of a tile copied as it is (f16 records): zero, so that
// stale records (any bits, NaN included) never meet a zero weight.
template <int D>
__device__ __forceinline__ void zero_outside(int j_lo, int n_valid, int lane, __half* tile) {
  constexpr int C = D / 32;
  uint32_t z[C / 2];
#pragma unroll
  for (int c = 0; c < C / 2; ++c) z[c] = 0u;
  for (int j = 0; j < kTok; ++j)
    if (j < j_lo || j >= n_valid) store_half2s<C>(tile + j * tile_stride(D) + lane * C, z);
}

// A step's tile from its records: rows outside [j_lo, n_valid) zero (stale records past
// the sequence, records before a window's start).
template <int D, class Lane>
__device__ __forceinline__ void decode_tile(const Lane& lane_dec, const unsigned char* recs, int rb, int lane,
                                            int j_lo, int n_valid, __half* tile) {
  lane_dec.visit([&](const auto& dec) { decode_rows<D>(dec, recs, rb, lane, tile); });
  if (j_lo > 0 || n_valid < kTok) zero_outside<D>(j_lo, n_valid, lane, tile);
}

// Scores of sink rows [0, n) (row j's lane floats at rows + j·stride) in f32 against the
// f32 queries (head e's lane floats at q + e·D), into this lane's fragment sc (tokens
// row0, row1 of mma rows g, g + 8; heads 2t, 2t + 1). A sink's key is often far longer than the others (the tests
// make it 6×): f16 operands had cost its score up to ~3e-3 of relative error in the output.
template <int D>
__device__ void exact_sink_scores(const float* rows, const float* q, int64_t stride, int n, int G, int lane,
                                  int row0, int row1, float (&sc)[4]) {
  constexpr int C = D / 32;
  const int t = lane & 3;
  for (int j = 0; j < n; ++j)
    for (int e = 0; e < G; ++e) {
      float s = 0.f;
#pragma unroll
      for (int c = 0; c < C; ++c) s = fmaf(q[e * D + c], rows[j * stride + c], s);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if ((e >> 1) == t && (row0 == j || row1 == j)) {
        const int i = (row0 == j ? 0 : 2) + (e & 1);
        sc[0] = i == 0 ? s : sc[0];
        sc[1] = i == 1 ? s : sc[1];
        sc[2] = i == 2 ? s : sc[2];
        sc[3] = i == 3 ? s : sc[3];
      }
    }
}

// Rows [j0, n) of the tile from sink rows (row j at rows + j·stride, this lane's C floats);
// rows below j0 lie before a window's start and stay zero.
template <int D>
__device__ void sink_rows_to_tile(const float* rows, int64_t stride, int j0, int n, int lane, __half* tile) {
  constexpr int C = D / 32;
  for (int j = j0 > 0 ? j0 : 0; j < n; ++j) {
    uint32_t hv[C / 2];
#pragma unroll
    for (int c = 0; c < C / 2; ++c) hv[c] = pack_half2(rows[j * stride + 2 * c], rows[j * stride + 2 * c + 1]);
    store_half2s<C>(tile + j * tile_stride(D) + lane * C, hv);
  }
}

// kLaunch (decode_args.h): the single launch's prologue and epilogue (decode_single.cuh)
// are compiled in only there: the three-launch instance keeps the register allocation it
// had without them.
template <int D, class R, SplitLaunch kLaunch>
__global__ void __launch_bounds__(kWarps * 32, R::min_blocks(D)) decode_mma_tile_kernel(const __grid_constant__ DecodeArgs a) {
  constexpr int C = D / 32, KC = D / 16, TS = tile_stride(D), kStages = R::kStages;
  extern __shared__ __align__(16) unsigned char smem[];
  const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int G = a.group;
  const int rbk = a.kc.record_bytes, rbv = a.vc.record_bytes;
  const TileMmaSmem lay = tile_mma_smem<R>(D, G, rbk, rbv, R::lut_floats(a.kc), R::lut_floats(a.vc));
  float* lutk = reinterpret_cast<float*>(smem);
  float* lutv = lutk + lay.lk;
  __half* tile = reinterpret_cast<__half*>(smem + lay.tiles) + warp * kTok * TS;
  unsigned char* ring = smem + lay.ring + warp * kStages * lay.stage;
  R::template fill_lut<D>(a.kc, lutk, tid, kWarps * 32);
  R::template fill_lut<D>(a.vc, lutv, tid, kWarps * 32);

  const int64_t qrow = static_cast<int64_t>(b) * a.n_kv * G + h * G;
  // Direct: launched (PDL) straight behind whatever the stream ran before, which may have
  // written the lengths, tables or records: wait for it before the first read of them.
  if constexpr (kLaunch == SplitLaunch::direct_queries) pdl_wait();
  const SplitWork work = split_work(a, b, split, warp, kWarps, kTok);
  const int seq_len = work.seq_len, lo = work.lo, tb = work.tb, te = work.te, my_count = work.my_count;
  const int32_t* table = a.block_tables + static_cast<int64_t>(b) * a.max_blocks;
  const SinkRows sinks = sink_rows_of(a, b, h, D, lane * C);
  const int n_sinks = sinks.count;
  const int64_t sink_row = sinks.row;

  // Copy roles as decode_mma.cu: lanes 0-7 keys of run 0 (tokens 0-7 of a step), 8-15
  // keys of run 1, 16-23 and 24-31 the values. Runs at or past cp_end are not read. Each
  // lane looks up its run's block one step ahead of its copy.
  const int run_half = (lane >> 3) & 1, chunk = lane & 7;
  const bool run_v = lane >= 16;
  const int rb = run_v ? rbv : rbk;
  const int cp_end = min(seq_len, te * kTok);
  const int bt = a.block_tokens, bshift = a.block_shift;
  const uint8_t* pool = (run_v ? a.vpool : a.kpool) + static_cast<int64_t>(h) * bt * rb;
  const int64_t block_bytes = run_v ? a.vblock_bytes : a.kblock_bytes;
  const uint32_t dst0 = static_cast<uint32_t>(__cvta_generic_to_shared(ring)) + (run_v ? lay.karea : 0) +
                        run_half * 8 * (R::kDirect ? 2 * TS : rb);
  int cp_pos = (tb + warp) * kTok + 8 * run_half;
  auto block_at = [&](int p) {
    if (p >= cp_end) return 0;
    return __ldg(table + (bshift >= 0 ? p >> bshift : p / bt));
  };
  auto issue = [&](int stage, int block) {
    if (cp_pos < cp_end) {
      const int in_block = bshift >= 0 ? cp_pos & (bt - 1) : cp_pos % bt;
      const uint8_t* src = pool + block * block_bytes + static_cast<int64_t>(in_block) * rb;
      if constexpr (R::kDirect) {
        // 8 rows of D halves into 8 tile rows: chunk e = chunk + 8i of the run (contiguous
        // in the pool) is row e / CPR, 16-byte column e % CPR.
        constexpr int CPR = D / 8;
        const uint32_t dst = dst0 + stage * lay.stage + chunk * 16;
#pragma unroll
        for (int i = 0; i < CPR; ++i)
          cp_async16(dst + (i / (CPR / 8)) * (2 * TS) + (i % (CPR / 8)) * 128, src + chunk * 16 + 128 * i);
      } else {
        // 8 records, 8-byte aligned at both ends (block_tokens % 8 == 0); 16 for q8_0 / q4_0.
        copy_tile_async<R::kAnyAlign, 8>(dst0 + stage * lay.stage, src, 8 * rb, chunk);
      }
    }
    cp_async_commit();  // empty groups keep the wait count uniform
    cp_pos += kWarps * kTok;
  };

  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  float acc[KC][4];
#pragma unroll
  for (int mt = 0; mt < KC; ++mt) acc[mt][0] = acc[mt][1] = acc[mt][2] = acc[mt][3] = 0.f;

  __syncthreads();  // look-up areas ready
  // Q' as B fragments: column g is query head g (zero for g >= G); in k-chunk kc thread t
  // holds dims q_dim(kc, 0) + {0, 1} and q_dim(kc, 1) + {0, 1}: 16kc + 2t and 16kc + 8 + 2t
  // (the tile's order), or the fragment path's order. Its mma rows hold tokens row0 / row1,
  // its accumulator rows dims v_dim.
  constexpr bool kFrag = R::kFrag;
  auto q_dim = [&](int kc, int r) { return kFrag ? frag_q_dim(kc, t, r) : 16 * kc + 2 * t + 8 * r; };
  auto v_dim = [&](int m, int hi) { return kFrag ? frag_v_dim(m, g, hi) : 16 * m + 8 * hi + g; };
  const int row0 = kFrag ? frag_row_token<D>(g) : g, row1 = kFrag ? frag_row_token<D>(g + 8) : g + 8;
  uint32_t qb[KC][2];
  // Single or direct: never with sinks or frames (exact_sink_scores and the frames read q_rot).
  constexpr bool single = kSingleDims<D> && kLaunch == SplitLaunch::single;
  constexpr bool direct = kLaunch == SplitLaunch::direct_queries;
  if constexpr (single) {  // this CTA rotates them (in the tiles and rings, before any copy lands there)
    const SingleQueries q = single_rotate_queries<D>(a, b, h, smem + lay.tiles);
#pragma unroll
    for (int kc = 0; kc < KC; ++kc)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int c = q_dim(kc, r);
        qb[kc][r] = g < G ? pack_half2(q(g, c) * a.q_scale, q(g, c + 1) * a.q_scale) : 0u;
      }
    __syncthreads();
  }
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s, block_at(cp_pos));
  int next_block = block_at(cp_pos);

  // Keys in RoPE frames (calibrated records only; never single or direct): the query set of the
  // frame of the warp's step, reloaded when a step starts a new frame (steps never
  // straddle one).
  constexpr bool kFramed = !single && !direct && std::is_same_v<R, GroupedTileRecords>;
  const bool framed = kFramed && a.frames.range > 0;
  int q_frame = framed && my_count > 0 ? frame_of(a, (tb + warp) * kTok) : 0;
  float bias[2] = {0.f, 0.f};  // the frame's q_f·μ of heads 2t, 2t + 1 (the fragment's columns)
  auto load_q = [&]() {
    if (framed) {
      const float* qb_f = a.q_bias + q_frame * (a.q_frame_floats / D) + qrow;
      bias[0] = 2 * t < G ? qb_f[2 * t] : 0.f;
      bias[1] = 2 * t + 1 < G ? qb_f[2 * t + 1] : 0.f;
    }
    const float* qp = a.q_rot + q_frame * a.q_frame_floats + (qrow + (g < G ? g : 0)) * D;
#pragma unroll
    for (int kc = 0; kc < KC; ++kc)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float2 x = *reinterpret_cast<const float2*>(qp + q_dim(kc, r));
        qb[kc][r] = g < G ? pack_half2(x.x, x.y) : 0u;
      }
  };
  if constexpr (direct) {  // keys without a rotation
    int off[2 * KC];
#pragma unroll
    for (int k = 0; k < 2 * KC; ++k) off[k] = q_dim(k / 2, k % 2);
    direct_query_fragments<D>(a, b * a.query_stride + (h * G + (g < G ? g : 0)) * D, off, g < G, qb);
  } else if constexpr (!single) {
    pdl_wait();  // the rotated queries come from the prepare kernel
    load_q();
  }
  // ldmatrix row addresses. Keys (A = tile rows): matrix j = lane/8 holds tokens 8(j&1) +
  // 0..7, dims 8(j>>1) + 0..7 of the k-chunk. Values (A = tile transposed): matrix j holds
  // tokens 8(j>>1) + 0..7, dims 8(j&1) + 0..7 of the m-tile.
  const uint32_t k_lane = 2 * (((lane & 7) + ((lane >> 3) & 1) * 8) * TS + (lane >> 4) * 8);
  const uint32_t v_lane = 2 * (((lane & 7) + (lane >> 4) * 8) * TS + ((lane >> 3) & 1) * 8);
  [[maybe_unused]] const typename R::template Lane<D> kdec(a.kc, lutk, lane, warp), vdec(a.vc, lutv, lane, warp);
  // The fragment path's value token slots 2t, 2t+1, 2t+8, 2t+9 and its code bytes.
  int slot_tok[4] = {};
  [[maybe_unused]] int vbyte = 0, vshift = 0;
  if constexpr (kFrag) {
#pragma unroll
    for (int x = 0; x < 4; ++x) slot_tok[x] = frag_row_token<D>(2 * t + (x & 1) + 8 * (x >> 1));
    vbyte = R::Code::byte_of(4 * g);
    vshift = R::Code::shift_of(4 * g);
  }

  for (int k = 0; k < my_count; ++k) {
    const int block = next_block;
    next_block = block_at(cp_pos + kWarps * kTok);
    issue((k + kStages - 1) % kStages, block);
    cp_async_wait<kStages - 1>();
    __syncwarp();
    const unsigned char* ks = ring + (k % kStages) * lay.stage;
    const int tok0 = (tb + warp + k * kWarps) * kTok;
    if (framed && frame_of(a, tok0) != q_frame) {
      q_frame = frame_of(a, tok0);
      load_q();
    }
    // Rows [j_lo, n_valid) are attended: j_lo > 0 only in the window's first step.
    const int n_valid = min(kTok, seq_len - tok0), j_lo = lo - tok0;
    const int n_sink_rows = min(n_valid, n_sinks - tok0);  // > 0 only in the first steps
    // The step's sink rows (this lane's floats), computed where used: a 64-bit value kept
    // across the step costs the calibrated d = 128 kernel spills.
    auto sink_step = [&]() { return sink_row + static_cast<int64_t>(tok0) * a.n_kv * D; };

    // The step's K and V tiles: the ring stage itself for f16 records.
    __half* ktile = R::kDirect ? reinterpret_cast<__half*>(const_cast<unsigned char*>(ks)) : tile;
    __half* vtile = R::kDirect ? reinterpret_cast<__half*>(const_cast<unsigned char*>(ks + lay.karea)) : tile;
    if constexpr (R::kPrepare) {
      kdec.prepare(ks, rbk, lane);
      vdec.prepare(ks + lay.karea, rbv, lane);
      __syncwarp();
    }
    if constexpr (!R::kDirect && !kFrag) decode_tile<D>(kdec, ks, rbk, lane, j_lo, n_valid, ktile);
    if (!kFrag && n_sink_rows > 0)  // the fragment path's sink scores are exact_sink_scores' alone
      sink_rows_to_tile<D>(a.sink_k + sink_step(), static_cast<int64_t>(a.n_kv) * D, j_lo, n_sink_rows, lane, ktile);
    const uint32_t k_addr = static_cast<uint32_t>(__cvta_generic_to_shared(ktile)) + k_lane;
    const uint32_t v_addr = static_cast<uint32_t>(__cvta_generic_to_shared(vtile)) + v_lane;
    __syncwarp();
    // Scores: sc = S[token row0][head 2t, 2t+1], S[token row1][head 2t, 2t+1]; two
    // accumulator chains halve the mma latency chain.
    float sc[4];
    {
      float c2[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
      for (int kc = 0; kc < KC; ++kc) {
        uint32_t r[4];
        if constexpr (kFrag) {
          using F = typename R::template Frag<D>;
          F::keys(ks + row0 * F::kRecordBytes, ks + row1 * F::kRecordBytes, kc, t, r);
        } else {
          ldmatrix_x4(k_addr + 32 * kc, r);
        }
        mma16816(c2[kc & 1], r[0], r[1], r[2], r[3], qb[kc][0], qb[kc][1]);
      }
#pragma unroll
      for (int c = 0; c < 4; ++c) sc[c] = c2[0][c] + c2[1][c];
    }
    __syncwarp();  // every lane has read the key tile (ldmatrix): the tile may be rewritten
    // The value tile before the softmax, which waits on the score mma: the decode's
    // shared-memory loads overlap that latency and the softmax's shuffles.
    if constexpr (kFrag) {
    } else if constexpr (!R::kDirect) {
      decode_tile<D>(vdec, ks + lay.karea, rbv, lane, j_lo, n_valid, vtile);
    } else if (j_lo > 0 || n_valid < kTok) {  // K rows there only give scores the mask drops
      zero_outside<D>(j_lo, n_valid, lane, vtile);
    }
    if (!kFrag && n_sink_rows > 0)
      sink_rows_to_tile<D>(a.sink_v + sink_step(), static_cast<int64_t>(a.n_kv) * D, j_lo, n_sink_rows, lane, vtile);
    if (n_sink_rows > 0)
      exact_sink_scores<D>(a.sink_k + sink_step(), a.q_rot + q_frame * a.q_frame_floats + qrow * D + lane * C,
                           static_cast<int64_t>(a.n_kv) * D, n_sink_rows, G, lane, row0, row1, sc);
    if (framed) {
      sc[0] += bias[0], sc[1] += bias[1];
      sc[2] += bias[0], sc[3] += bias[1];
    }
    const bool valid0 = row0 < n_valid && row0 >= j_lo, valid1 = row1 < n_valid && row1 >= j_lo;
    const float s[4] = {valid0 ? sc[0] : -INFINITY, valid0 ? sc[1] : -INFINITY, valid1 ? sc[2] : -INFINITY,
                        valid1 ? sc[3] : -INFINITY};
    float alpha[2], p[4];
    mma_softmax_step(s, m_run, l_run, alpha, p);
    // P'ᵀ as B fragments (head g; tokens of mma rows 2t, 2t+1 and 8+2t, 9+2t), as
    // decode_mma.cu; the value norms are in the tile (the fragments on the fragment path).
    const uint32_t pb0 = transpose8x8(pack_half2(p[0], p[1]));
    const uint32_t pb1 = transpose8x8(pack_half2(p[2], p[3]));
    mma_rescale<KC>(acc, alpha);
    __syncwarp();
    if constexpr (kFrag) {
      // Values: m-tiles 2·blk, 2·blk + 1 from block blk of the token slots' records; scales zero
      // outside [j_lo, n_valid), sink slots' halves from their exact rows.
      using F = typename R::template Frag<D>;
      const uint8_t* vrec[4];
      unsigned keep = 0, sink = 0;
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        vrec[x] = ks + lay.karea + slot_tok[x] * F::kRecordBytes;
        const bool in = slot_tok[x] >= j_lo && slot_tok[x] < n_valid;
        keep |= static_cast<unsigned>(in) << x;
        sink |= static_cast<unsigned>(in && slot_tok[x] < n_sink_rows) << x;
      }
#pragma unroll
      for (int blk = 0; blk < D / 32; ++blk) {
        uint32_t sv[2], va[2][4];
        F::value_scales(vrec, blk, keep, sv);
        F::values(vrec, blk, vbyte, vshift, sv, va);
        if (sink)
          sink_value_fragments(a.sink_v + sink_step() - lane * C, static_cast<int64_t>(a.n_kv) * D, slot_tok, sink, blk,
                               g, va);
#pragma unroll
        for (int i = 0; i < 2; ++i) mma16816(acc[2 * blk + i], va[i][0], va[i][1], va[i][2], va[i][3], pb0, pb1);
      }
    } else {
      // Values: m-tile m has dims 16m + g (rows g) and 16m + 8 + g (rows g + 8).
#pragma unroll
      for (int m = 0; m < KC; ++m) {
        uint32_t r[4];
        ldmatrix_x4_trans(v_addr + 32 * m, r);
        mma16816(acc[m], r[0], r[1], r[2], r[3], pb0, pb1);
      }
    }
    __syncwarp();  // the stage and the tile are consumed before the next step writes them
  }
  cp_async_wait<0>();
  pdl_trigger();  // the reduce kernel may start launching

  __syncthreads();  // tiles and rings are free: reuse them to merge the warps
  float* cm = reinterpret_cast<float*>(smem + lay.tiles);
  float* cl = cm + kWarps * G;
  float* cacc = cl + kWarps * G;
  mma_store_softmax_state(m_run, l_run, G, warp, lane, cm, cl);
#pragma unroll
  for (int m = 0; m < KC; ++m) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int head = 2 * t + hh;
      if (head < G) {
        cacc[(warp * G + head) * D + v_dim(m, 0)] = acc[m][hh];
        cacc[(warp * G + head) * D + v_dim(m, 1)] = acc[m][2 + hh];
      }
    }
  }
  __syncthreads();
  if constexpr (single) return single_finish<D, kWarps>(cm, cl, cacc, a, b, h, smem + lay.tiles);
  write_split_partials<D, kWarps>(cm, cl, cacc, G, a, qrow, split, tid);
}

using Kernel = void (*)(DecodeArgs);

// The kernel of a record kind and its dynamic shared memory for these codecs and group.
struct TileLaunch {
  Kernel kernel;
  int smem;
};

// f(R{}) with the tile records of `kind`; false when the tile kernel is not compiled for it.
// The one list of the kinds it takes (tile_launch_for, mma_plain_applies).
template <class F>
bool with_tile_records(QuantKind kind, F&& f) {
  switch (kind) {
    case QuantKind::grouped: f(GroupedTileRecords{}); return true;
    case QuantKind::f16: f(F16TileRecords{}); return true;
    case QuantKind::q8_0: f(Q8TileRecords{}); return true;
    case QuantKind::q4_0: f(Q4TileRecords{}); return true;
    case QuantKind::fp8: f(Fp8TileRecords{}); return true;
    default: return false;
  }
}

// single: the dynamic shared memory holds the single launch's prologue and epilogue too.
TileLaunch tile_launch_for(const CodecDesc& k, const CodecDesc& v, int d, int group,
                           SplitLaunch mode = SplitLaunch::prepared) {
  return dispatch_head_dim(d, "tile tensor-core decode kernel", [&]<int D>() -> TileLaunch {
    TileLaunch t{};
    auto of = [&]<class R>(R) {
      const TileMmaSmem lay =
          tile_mma_smem<R>(D, group, k.record_bytes, v.record_bytes, R::lut_floats(k), R::lut_floats(v));
      const int extra = mode == SplitLaunch::single ? lay.tiles + single_smem(D, group, kWarps).total : 0;
      Kernel kernel = decode_mma_tile_kernel<D, R, SplitLaunch::prepared>;
      if constexpr (kSingleDims<D>)
        if (mode == SplitLaunch::single) kernel = decode_mma_tile_kernel<D, R, SplitLaunch::single>;
      if constexpr (!std::is_same_v<R, GroupedTileRecords>)  // presets' keys are always rotated
        if (mode == SplitLaunch::direct_queries) kernel = decode_mma_tile_kernel<D, R, SplitLaunch::direct_queries>;
      t = TileLaunch{kernel, std::max(lay.total, extra)};
    };
    if (with_tile_records(k.kind, of)) return t;
    throw Error("tile tensor-core decode kernel: " + std::string(quant_traits(k.kind).name) +
                " records are not compiled (grouped, f16, q8_0, q4_0, fp8)");
  });
}

}  // namespace

bool mma_grouped_applies(const CodecDesc& k, const CodecDesc& v) {
  return k.kind == QuantKind::grouped && v.kind == QuantKind::grouped && k.dim == v.dim &&
         quant_traits(k.kind).cuda_mma;
}

bool mma_plain_applies(const CodecDesc& k, const CodecDesc& v) {
  const bool plain = k.kind != QuantKind::grouped && with_tile_records(k.kind, [](auto) {});
  return plain && v.kind == k.kind && k.dim == v.dim && quant_traits(k.kind).cuda_mma;
}

int mma_tile_resident_ctas(const CodecDesc& k, const CodecDesc& v, int d, int group) {
  const TileLaunch t = tile_launch_for(k, v, d, group);
  return mma_occupancy(reinterpret_cast<const void*>(t.kernel), t.smem);
}

int mma_tile_single_cap(const CodecDesc& k, const CodecDesc& v, int d, int group) {
  const TileLaunch t = tile_launch_for(k, v, d, group, SplitLaunch::single);
  return mma_cluster_cap(t.kernel, t.smem);
}

void launch_decode_mma_tile(const DecodeArgs& a, int d, int batch, SplitLaunch mode, void* stream) {
  const TileLaunch t = tile_launch_for(a.kc, a.vc, d, a.group, mode);
  launch_mma_split(t.kernel, t.smem, a, batch, mode, stream, "decode_mma_tile_kernel");
}

}  // namespace tq::cuda::detail
