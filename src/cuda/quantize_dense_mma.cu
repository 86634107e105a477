// Quantize-on-write for dense rotations on tensor cores. The exact product (every term
// rounded in the reference's order) runs on CUDA cores at about 3% of copy bandwidth over
// 262K vectors; here y = F x is mma.m16n8k16 over f16 halves: x scaled per vector and F
// scaled per matrix by powers of two, each split into a high and a low f16 half, and
// hi·hi + hi·lo + lo·hi summed in f32 (about 22 bits of each operand). y then differs
// from the reference's float sum by a few units in its last place, so a record may differ
// from Codec::encode only at a near-tie: a code one level off where y / ‖y‖ lies on a
// boundary, or the fp16 norm one unit off (docs/CUDA.md, "Near-tie contract").
//
// A warp takes 16 tokens of one head and side at a time: cp.async stages their inputs,
// refused (NaN/Inf) vectors are reported as by the other kernels, the product accumulates
// in registers, and the record is encoded straight from the accumulator fragments (a quad
// of lanes holds a row's coordinates: two shuffles reduce the norm and pack eight codes).
// The CTA keeps its head's F fragments (D² · 4 bytes) in shared memory and walks the
// head's tokens, so F is read once per CTA.
#include <algorithm>
#include <string>

#include "codec_desc.h"
#include "cuda_check.h"
#include "decode_args.h"
#include "codebook_device.cuh"
#include "mma_ops.cuh"
#include "turboquant/head_dim.h"
#include "warp_encode.cuh"

namespace tq::cuda::detail {

namespace {

constexpr int kQuantWarps = 8;
constexpr int kRows = 16;  // a warp's tokens per pass: one m16 tile

template <int D>
struct DenseMmaSmem {
  static constexpr int kMaxPitch = D * 4 + 16;   // a staged row: f32 inputs at most, padded against bank conflicts
  static constexpr int kRecPitch = D / 2 + 16;   // a record: fp16 norm and codes of at most 4 bits
  static constexpr size_t kFrags = size_t{D} * D * 4;
  static constexpr size_t kWarp = size_t{kRows} * (kMaxPitch + kRecPitch);
  static constexpr size_t kBytes = kFrags + kQuantWarps * kWarp;
};

// Two consecutive staged inputs (col even) of one row.
__device__ inline float2 staged_pair(const uint8_t* row, int col, int dtype) {
  if (dtype == 0) return *reinterpret_cast<const float2*>(row + 4 * col);
  const uint32_t w = *reinterpret_cast<const uint32_t*>(row + 2 * col);
  float f[2];
  unpack_16bit_pairs<1>(&w, dtype, f);
  return make_float2(f[0], f[1]);
}

// {hi, lo} f16 halves of (a, b) scaled by s: hi = f16(a s), lo = f16(a s - hi).
__device__ inline void split_pair(float2 v, float s, uint32_t& hi, uint32_t& lo) {
  const float a = v.x * s, b = v.y * s;  // powers of two: exact
  const float ha = __half2float(__float2half_rn(a)), hb = __half2float(__float2half_rn(b));
  hi = pack_half2(ha, hb);
  lo = pack_half2(a - ha, b - hb);
}

template <int D>
__global__ void __launch_bounds__(kQuantWarps * 32, 1) quantize_dense_mma_kernel(const __grid_constant__ QuantizeArgs a) {
  using S = DenseMmaSmem<D>;
  constexpr int KS = D / 16, NT = D / 8, E = D / 32;
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ SharedCodebooks cb;
  const int side = a.first_side + blockIdx.z, head = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const CodecDesc& c = a.codec[side];
  const RotationDesc rot = a.rotations[side][head];
  const uint4* frags = reinterpret_cast<const uint4*>(smem);
  {
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    for (int e = threadIdx.x; e < static_cast<int>(S::kFrags / 16); e += kQuantWarps * 32)
      cp_async16(dst + 16 * e, rot.mma_b + 4 * e);
    cp_async_commit();
  }
  load_codebooks(c, cb, threadIdx.x);
  uint8_t* stage = smem + S::kFrags + warp * S::kWarp;
  uint8_t* recs = stage + kRows * S::kMaxPitch;
  const int pitch = (D << (a.dtype == 0 ? 2 : 1)) + 16;
  const int rb = c.record_bytes;
  const int n_tiles = (a.n_tokens + kRows - 1) / kRows, step = gridDim.x * kQuantWarps;
  int tile = blockIdx.x * kQuantWarps + warp;
  if (tile < n_tiles)  // the first inputs' copies in flight with the fragments'
    stage_inputs<D>(a, side, head, tile * kRows, min(kRows, a.n_tokens - tile * kRows), stage, pitch, lane);
  cp_async_wait<0>();
  __syncthreads();

  for (; tile < n_tiles; tile += step) {
    const int t0 = tile * kRows, n = min(kRows, a.n_tokens - t0);
    const int my_slot = lane < n ? a.slots[t0 + lane] : -1;  // lane r holds row r's slot
    // Rows not to write (past the end, skipped slots, refused inputs), and each row's
    // scale 2^s (lane r holds row r's): its largest |x| into [2^14, 2^15), so x's halves
    // stay inside f16's range whatever the input's magnitude.
    uint32_t skip = n < 32 ? ~0u << n : 0u;
    int my_shift = 0;
    for (int r = 0; r < n; ++r) {
      if (__shfl_sync(kFull, my_slot, r) < 0) {
        skip |= 1u << r;
        continue;
      }
      float v[E];
      load_lane<E>(stage + r * pitch, lane * E, a.dtype, v);
      int bad = E;
      float bad_x = 0.f, amax = 0.f;
#pragma unroll
      for (int e = E - 1; e >= 0; --e) {
        if (!isfinite(v[e])) bad = e, bad_x = v[e];
        amax = fmaxf(amax, fabsf(v[e]));
      }
      if (__any_sync(kFull, bad < E)) {  // NaN/Inf inputs are refused (docs/FORMATS.md, "Range")
        if (bad < E) note_bad_value(a.status, t0 + r, side, head, lane * E + bad, bad_x);
        if (lane == 0) atomicAdd(&a.status->nonfinite, 1ull);
        skip |= 1u << r;
        continue;
      }
#pragma unroll
      for (int off = 16; off >= 1; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, off));
      int ex = 0;
      frexpf(amax, &ex);
      if (lane == r) my_shift = amax > 0.f ? min(15 - ex, 126) : 0;
    }
    const int shift_g = __shfl_sync(kFull, my_shift, g), shift_g8 = __shfl_sync(kFull, my_shift, g + 8);
    const float s_g = ldexpf(1.f, shift_g), s_g8 = ldexpf(1.f, shift_g8);

    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
    const uint8_t* row_g = stage + g * pitch;
    const uint8_t* row_g8 = stage + (g + 8) * pitch;
#pragma unroll 1
    for (int ks = 0; ks < KS; ++ks) {
      const int col = 16 * ks + 2 * t;
      uint32_t hi[4], lo[4];
      split_pair(staged_pair(row_g, col, a.dtype), s_g, hi[0], lo[0]);
      split_pair(staged_pair(row_g8, col, a.dtype), s_g8, hi[1], lo[1]);
      split_pair(staged_pair(row_g, col + 8, a.dtype), s_g, hi[2], lo[2]);
      split_pair(staged_pair(row_g8, col + 8, a.dtype), s_g8, hi[3], lo[3]);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const uint4 b = frags[(nt * KS + ks) * 32 + lane];
        mma16816(acc[nt], lo[0], lo[1], lo[2], lo[3], b.x, b.y);  // the small terms first
        mma16816(acc[nt], hi[0], hi[1], hi[2], hi[3], b.z, b.w);
        mma16816(acc[nt], hi[0], hi[1], hi[2], hi[3], b.x, b.y);
      }
    }

    // Records from the fragments: acc[nt][2h + e] is row g + 8h, coordinate 8nt + 2t + e.
    // Rows to skip are encoded too (their lanes take part in the quad's shuffles) but
    // never written.
    uint32_t clamped_rows = 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = g + 8 * h;
      const float back = __fmul_rn(rot.mma_unscale, ldexpf(1.f, -(h ? shift_g8 : shift_g)));
      float y[NT][2];
      double n2 = 0;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          y[nt][e] = __fmul_rn(acc[nt][2 * h + e], back);
          n2 += static_cast<double>(y[nt][e]) * y[nt][e];
        }
      n2 += __shfl_xor_sync(kFull, n2, 1);
      n2 += __shfl_xor_sync(kFull, n2, 2);
      const float norm = static_cast<float>(sqrt(n2));
      const float inv = reciprocal_or_zero(norm);
      uint8_t* rec = recs + row * S::kRecPitch;
      double c2 = 0;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int half = 8 * nt < c.n_hi ? 0 : 1;  // n_hi is a multiple of 8
        const int bits = half ? c.bits_lo : c.bits_hi;
        uint32_t w = 0;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int idx = bucketize(__fmul_rn(y[nt][e], inv), cb.bounds[half], bits);
          const float l = cb.levels[half][idx];
          c2 += static_cast<double>(l) * l;
          w |= static_cast<uint32_t>(idx) << ((2 * t + e) * bits);
        }
        w |= __shfl_xor_sync(kFull, w, 1);
        w |= __shfl_xor_sync(kFull, w, 2);
        const int byte0 = half ? c.lo_offset + (nt - c.n_hi / 8) * bits : c.hi_offset + nt * bits;
        if (t < bits) rec[byte0 + t] = static_cast<uint8_t>(w >> (8 * t));
      }
      if (c.corrected) {
        c2 += __shfl_xor_sync(kFull, c2, 1);
        c2 += __shfl_xor_sync(kFull, c2, 2);
      }
      if (t == 0) {
        bool sat = false;
        store_half_field(rec, c.corrected && norm > 0.f ? static_cast<float>(static_cast<double>(norm) / sqrt(c2)) : norm,
                         sat);
        if (sat && !((skip >> row) & 1)) clamped_rows |= 1u << row;
      }
    }
    const uint32_t clamped_all = __reduce_or_sync(kFull, clamped_rows);
    if (lane == 0 && clamped_all) atomicAdd(&a.status->saturated, static_cast<unsigned long long>(__popc(clamped_all)));
    __syncwarp();  // the records are staged; every lane has read its A fragments

    // The staged records into their slots, 16-bit words (mse records have even sizes).
    const int half_rb = rb / 2;
    for (int base = 0; base < kRows * half_rb; base += 32) {
      const int e = base + lane, r = min(e / half_rb, kRows - 1), o = e - r * half_rb;
      const int slot = __shfl_sync(kFull, my_slot, r);
      if (e < kRows * half_rb && !((skip >> r) & 1)) {
        reinterpret_cast<uint16_t*>(record_at(a, side, head, slot, rb))[o] =
            reinterpret_cast<const uint16_t*>(recs + r * S::kRecPitch)[o];
      }
    }
    __syncwarp();  // stage and recs are reused by the next tile
    if (tile + step < n_tiles) {
      const int next = (tile + step) * kRows;
      stage_inputs<D>(a, side, head, next, min(kRows, a.n_tokens - next), stage, pitch, lane);
    }
  }
}

}  // namespace

bool quantize_dense_mma_applies(const CodecDesc& c, RotationKind rotation, int d) {
  return c.kind == QuantKind::mse && rotation == RotationKind::dense && d <= kDenseMmaMaxDim;
}

void launch_quantize_dense_mma(const QuantizeArgs& a, int d, int n_sides, int sm_count, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  auto launch = [&]<int D>() {
    using S = DenseMmaSmem<D>;
    const void* kernel = reinterpret_cast<const void*>(&quantize_dense_mma_kernel<D>);
    static const int per_sm = [&] {
      ensure_mma_smem(kernel, static_cast<int>(S::kBytes));
      int n = 0;
      check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kQuantWarps * 32, S::kBytes),
                 "cudaOccupancyMaxActiveBlocksPerMultiprocessor (tensor-core quantize)");
      return n > 1 ? n : 1;
    }();
    // Enough CTAs to fill the GPU once, spread over the heads and sides; each walks its
    // share of the tiles.
    const int tiles = (a.n_tokens + kRows - 1) / kRows;
    const int per_head = (sm_count * per_sm + a.n_kv * n_sides - 1) / (a.n_kv * n_sides);
    const int x = std::max(1, std::min(per_head, (tiles + kQuantWarps - 1) / kQuantWarps));
    quantize_dense_mma_kernel<D><<<dim3(x, a.n_kv, n_sides), kQuantWarps * 32, S::kBytes, s>>>(a);
  };
  switch (d) {
    case 64: launch.template operator()<64>(); break;
    case 128: launch.template operator()<128>(); break;
    default: throw Error("quantize_on_write (tensor-core kernel): head size " + std::to_string(d) +
                         " is not supported (64 and 128: the rotation's fragments must fit shared memory)");
  }
  check_launch("quantize_dense_mma_kernel");
}

}  // namespace tq::cuda::detail
