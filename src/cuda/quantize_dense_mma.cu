// Quantize-on-write for dense rotations on tensor cores. The exact product (every term
// rounded in the reference's order) runs on CUDA cores at about 3% of copy bandwidth over
// 262K vectors; here y = F x is mma.m16n8k16 over f16 halves: x scaled per vector and F
// scaled per matrix by powers of two, each split into a high and a low f16 half, and
// hi·hi + hi·lo + lo·hi summed in f32 (about 22 bits of each operand). y then differs
// from the reference's float sum by a few units in its last place, so a record may differ
// from Codec::encode only at a near-tie: a code one level off where y / ‖y‖ lies on a
// boundary, or the fp16 norm one unit off (docs/CUDA.md, "Near-tie contract").
//
// The launch fills the GPU once: CTA i takes the i-th equal share of all (head, side,
// 16-token tile) work, which spans at most a few heads; for each it copies the head's F
// fragments (D² · 4 bytes) into shared memory and its warps walk the tiles. A warp takes
// 16 tokens at a time: cp.async stages the next tile's inputs while it encodes this one,
// a scan in fragment layout finds each row's scale (and NaN/Inf, refused as by the other
// kernels), the product accumulates in registers, and the record is encoded straight from
// the accumulator fragments (a quad of lanes holds a row's coordinates: two shuffles
// reduce the norm and pack eight codes), with the code width a template argument.
#include <algorithm>
#include <cfloat>
#include <string>

#include "codec_desc.h"
#include "cuda_check.h"
#include "decode_args.h"
#include "codebook_device.cuh"
#include "mma_ops.cuh"
#include "warp_encode.cuh"

namespace tq::cuda::detail {

namespace {

constexpr int kMaxWarps = 16;
constexpr int kRows = 16;  // a warp's tokens per pass: one m16 tile

// Shared memory: the head's fragments, then per warp two input stages (a row: the
// input's bytes padded by 16 against bank conflicts) and the staged records.
struct DenseMmaLayout {
  int pitch = 0;       // a staged input row
  int rec_pitch = 0;   // a staged record: fp16 norm and codes of at most 4 bits, padded
  int frag_bytes = 0;  // D² · 4
  int warp_bytes = 0;  // 2 · kRows · pitch + kRows · rec_pitch
  int warps = 0;
  size_t bytes() const { return static_cast<size_t>(frag_bytes) + static_cast<size_t>(warps) * warp_bytes; }
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

// f16 inputs (a, b) scaled by 2^(sa + sb), each factor at most 2^15: exact, since the
// result's largest magnitude stays below 2^15 and scaling up loses no bits (subnormals
// included). This is split_pair's hi for such inputs, whose lo is zero.
__device__ inline uint32_t scale_half2(uint32_t raw, __half2 sa, __half2 sb) {
  __half2 h = *reinterpret_cast<const __half2*>(&raw);
  h = __hmul2(__hmul2(h, sa), sb);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Rows with a NaN/Inf input (the fragment scan saw one in a live row): each is reported
// and its bit returned, so the row is encoded but never written. Rare; the rows are
// searched one by one.
template <int D>
__device__ uint32_t refuse_nonfinite_rows(const QuantizeArgs& a, int side, int head, int t0, int n, uint32_t skip,
                                          const uint8_t* in, int pitch, int lane) {
  constexpr int E = D / 32;
  uint32_t refused = 0;
  for (int r = 0; r < n; ++r) {
    if ((skip >> r) & 1) continue;
    float v[E];
    load_lane<E>(in + r * pitch, lane * E, a.dtype, v);
    if (refuse_nonfinite<E>(a, v, t0 + r, side, head, lane)) refused |= 1u << r;
  }
  return refused;
}

// One warp's tile: tokens [t0, t0 + n) staged in `in`, records of `side`/`head` out.
template <int D, int kBits, bool kCorrected>
__device__ inline void encode_tile(const QuantizeArgs& a, const CodecDesc& c, const SharedCodebooks& cb,
                                   const RotationDesc& rot, const uint4* frags, int side, int head, int t0, int n,
                                   int my_slot, const uint8_t* in, uint8_t* recs, const DenseMmaLayout& L, int lane) {
  constexpr int KS = D / 16, NT = D / 8;
  const int g = lane >> 2, t = lane & 3;
  const int pitch = L.pitch;
  // Rows not to write: past the end, skipped slots, refused inputs.
  uint32_t skip = (n < 32 ? ~0u << n : 0u) | __ballot_sync(kFull, my_slot < 0);
  const bool live_g = !((skip >> g) & 1), live_g8 = !((skip >> (g + 8)) & 1);
  const uint8_t* row_g = in + g * pitch;
  const uint8_t* row_g8 = in + (g + 8) * pitch;

  // The scan, in fragment layout (lane: rows g and g + 8, columns 16ks + 2t + {0, 1, 8, 9}):
  // each row's largest |x| (its scale below) and whether a live row holds NaN/Inf (x · 0
  // is NaN exactly for those).
  float amax_g = 0.f, amax_g8 = 0.f, nan_g = 0.f, nan_g8 = 0.f;
  if (a.dtype == 1) {
    __half2 m_g = __float2half2_rn(0.f), m_g8 = m_g, z_g = m_g, z_g8 = m_g;
    const __half2 zero = m_g;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks)
#pragma unroll
      for (int c8 = 0; c8 < 16; c8 += 8) {
        const int col = 16 * ks + 2 * t + c8;
        const __half2 x_g = *reinterpret_cast<const __half2*>(row_g + 2 * col);
        const __half2 x_g8 = *reinterpret_cast<const __half2*>(row_g8 + 2 * col);
        m_g = __hmax2(m_g, __habs2(x_g)), m_g8 = __hmax2(m_g8, __habs2(x_g8));
        z_g = __hfma2(x_g, zero, z_g), z_g8 = __hfma2(x_g8, zero, z_g8);
      }
    amax_g = fmaxf(__low2float(m_g), __high2float(m_g)), amax_g8 = fmaxf(__low2float(m_g8), __high2float(m_g8));
    nan_g = __low2float(z_g) + __high2float(z_g), nan_g8 = __low2float(z_g8) + __high2float(z_g8);
  } else {
#pragma unroll
    for (int ks = 0; ks < KS; ++ks)
#pragma unroll
      for (int c8 = 0; c8 < 16; c8 += 8) {
        const int col = 16 * ks + 2 * t + c8;
        const float2 x_g = staged_pair(row_g, col, a.dtype), x_g8 = staged_pair(row_g8, col, a.dtype);
        amax_g = fmaxf(amax_g, fmaxf(fabsf(x_g.x), fabsf(x_g.y)));
        amax_g8 = fmaxf(amax_g8, fmaxf(fabsf(x_g8.x), fabsf(x_g8.y)));
        nan_g = fmaf(x_g.x, 0.f, fmaf(x_g.y, 0.f, nan_g));
        nan_g8 = fmaf(x_g8.x, 0.f, fmaf(x_g8.y, 0.f, nan_g8));
      }
  }
  if (__any_sync(kFull, (live_g && nan_g != 0.f) || (live_g8 && nan_g8 != 0.f)))  // NaN != 0 holds
    skip |= refuse_nonfinite_rows<D>(a, side, head, t0, n, skip, in, pitch, lane);
#pragma unroll
  for (int off = 1; off <= 2; off <<= 1) {
    amax_g = fmaxf(amax_g, __shfl_xor_sync(kFull, amax_g, off));
    amax_g8 = fmaxf(amax_g8, __shfl_xor_sync(kFull, amax_g8, off));
  }
  // Each row's scale 2^shift: its largest |x| into [2^14, 2^15), so x's halves stay inside
  // f16's range whatever the input's magnitude. Rows not written keep 2^0.
  auto shift_of = [&](float amax, int row) {
    if ((skip >> row) & 1 || !(amax > 0.f) || !(amax <= FLT_MAX)) return 0;
    int ex = 0;
    frexpf(amax, &ex);
    return min(15 - ex, 126);
  };
  const int shift_g = shift_of(amax_g, g), shift_g8 = shift_of(amax_g8, g + 8);

  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
  // f16 inputs whose scales are at most 2^30 (largest |x| in [2^-15, 2^15), or zero) need
  // no low half: two products instead of three, and no split.
  const bool f16_exact =
      a.dtype == 1 && __all_sync(kFull, shift_g >= 0 && shift_g <= 30 && shift_g8 >= 0 && shift_g8 <= 30);
  if (f16_exact) {
    const __half2 sa_g = __float2half2_rn(ldexpf(1.f, shift_g >> 1)),
                  sb_g = __float2half2_rn(ldexpf(1.f, shift_g - (shift_g >> 1)));
    const __half2 sa_g8 = __float2half2_rn(ldexpf(1.f, shift_g8 >> 1)),
                  sb_g8 = __float2half2_rn(ldexpf(1.f, shift_g8 - (shift_g8 >> 1)));
#pragma unroll 1
    for (int ks = 0; ks < KS; ++ks) {
      const int col = 16 * ks + 2 * t;
      const uint32_t h0 = scale_half2(*reinterpret_cast<const uint32_t*>(row_g + 2 * col), sa_g, sb_g);
      const uint32_t h1 = scale_half2(*reinterpret_cast<const uint32_t*>(row_g8 + 2 * col), sa_g8, sb_g8);
      const uint32_t h2 = scale_half2(*reinterpret_cast<const uint32_t*>(row_g + 2 * col + 16), sa_g, sb_g);
      const uint32_t h3 = scale_half2(*reinterpret_cast<const uint32_t*>(row_g8 + 2 * col + 16), sa_g8, sb_g8);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const uint4 b = frags[(nt * KS + ks) * 32 + lane];
        mma16816(acc[nt], h0, h1, h2, h3, b.z, b.w);  // x · F_lo, then x · F_hi
        mma16816(acc[nt], h0, h1, h2, h3, b.x, b.y);
      }
    }
  } else {
    const float s_g = ldexpf(1.f, shift_g), s_g8 = ldexpf(1.f, shift_g8);
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
  }

  // Records from the fragments: acc[nt][2h + e] is row g + 8h, coordinate 8nt + 2t + e, in
  // units of 2^-shift · mma_unscale (powers of two). So ‖y‖ is that unit times the norm of
  // the row's accumulators, and y / ‖y‖ is an accumulator over their norm. Rows to skip are
  // encoded too (their lanes take part in the quad's shuffles) but never written.
  uint32_t clamped_rows = 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = g + 8 * h;
    float n2 = 0.f;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) n2 = fmaf(acc[nt][2 * h], acc[nt][2 * h], fmaf(acc[nt][2 * h + 1], acc[nt][2 * h + 1], n2));
    n2 += __shfl_xor_sync(kFull, n2, 1);
    n2 += __shfl_xor_sync(kFull, n2, 2);
    const float root = sqrtf(n2);
    const float norm = __fmul_rn(root, __fmul_rn(rot.mma_unscale, ldexpf(1.f, -(h ? shift_g8 : shift_g))));
    // The reference's 1 / ‖y‖ is 0 where ‖y‖ is 0 or its reciprocal overflows.
    const float inv = reciprocal_or_zero(norm) != 0.f ? __fdiv_rn(1.f, root) : 0.f;
    uint8_t* rec = recs + row * L.rec_pitch;
    float c2 = 0.f;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int half = 8 * nt < c.n_hi ? 0 : 1;  // n_hi is a multiple of 8
      const int bits = kBits ? kBits : half ? c.bits_lo : c.bits_hi;
      const float* bounds = cb.bounds[half];
      uint32_t w = 0;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float v = __fmul_rn(acc[nt][2 * h + e], inv);
        int idx;
        if constexpr (kBits > 0)
          idx = bucketize<kBits>(v, bounds);
        else
          idx = bucketize(v, bounds, bits);
        if constexpr (kCorrected) {
          const float l = cb.levels[half][idx];
          c2 = fmaf(l, l, c2);
        }
        w |= static_cast<uint32_t>(idx) << ((2 * t + e) * bits);
      }
      w |= __shfl_xor_sync(kFull, w, 1);
      w |= __shfl_xor_sync(kFull, w, 2);
      const int byte0 = half ? c.lo_offset + (nt - c.n_hi / 8) * bits : c.hi_offset + nt * bits;
      if (t < bits) rec[byte0 + t] = static_cast<uint8_t>(w >> (8 * t));
    }
    if constexpr (kCorrected) {
      c2 += __shfl_xor_sync(kFull, c2, 1);
      c2 += __shfl_xor_sync(kFull, c2, 2);
    }
    if (t == 0) {
      bool sat = false;
      store_half_field(rec, kCorrected && norm > 0.f ? __fdiv_rn(norm, sqrtf(c2)) : norm, sat);
      if (sat && !((skip >> row) & 1)) clamped_rows |= 1u << row;
    }
  }
  const uint32_t clamped_all = __reduce_or_sync(kFull, clamped_rows);
  if (lane == 0 && clamped_all) atomicAdd(&a.status->saturated, static_cast<unsigned long long>(__popc(clamped_all)));
  __syncwarp();  // the records are staged
  const int rb = c.record_bytes;
  uint8_t* my_dst = lane < n && my_slot >= 0 ? record_at(a, side, head, my_slot, rb) : nullptr;
  copy_staged_records(a, side, rb, recs, L.rec_pitch, n, ~skip, 1, my_dst, lane);
}

template <int D, int kBits, bool kCorrected>
__global__ void __launch_bounds__(kMaxWarps * 32, 1)
    quantize_dense_mma_kernel(const __grid_constant__ QuantizeArgs a, const DenseMmaLayout L, int n_sides) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ SharedCodebooks cb;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const uint4* frags = reinterpret_cast<const uint4*>(smem);
  uint8_t* stage = smem + L.frag_bytes + warp * L.warp_bytes;
  uint8_t* recs = stage + 2 * kRows * L.pitch;
  // This CTA's share of the launch's (head, side, tile) work, heads of one side together.
  const int tiles = (a.n_tokens + kRows - 1) / kRows;
  const int64_t total = int64_t{tiles} * a.n_kv * n_sides;
  int64_t begin = total * blockIdx.x / gridDim.x;
  const int64_t end = total * (blockIdx.x + 1) / gridDim.x;
  while (begin < end) {
    const int pair = static_cast<int>(begin / tiles);
    const int side = a.first_side + pair / a.n_kv, head = pair % a.n_kv;
    const int first = static_cast<int>(begin - int64_t{pair} * tiles);
    const int last = static_cast<int>(min(end, int64_t{pair + 1} * tiles) - int64_t{pair} * tiles);
    begin += last - first;
    const CodecDesc& c = a.codec[side];
    const RotationDesc rot = a.rotations[side][head];
    __syncthreads();  // the previous head's fragments and codebooks are read
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    for (int e = threadIdx.x; e < L.frag_bytes / 16; e += blockDim.x) cp_async16(dst + 16 * e, rot.mma_b + 4 * e);
    cp_async_commit();
    load_codebooks(c, cb, threadIdx.x);
    // The warp's first tile's inputs and slots are in flight with the fragments; then
    // each tile's encode overlaps the next one's copies.
    int tile = first + warp, buf = 0;
    auto tokens = [&](int tl) { return min(kRows, a.n_tokens - tl * kRows); };
    auto slot_of = [&](int tl) { return tl < last && lane < tokens(tl) ? a.slots[tl * kRows + lane] : -1; };
    if (tile < last) stage_inputs_async<D>(a, side, head, tile * kRows, tokens(tile), stage, L.pitch, lane);
    int my_slot = slot_of(tile);
    cp_async_wait<0>();
    __syncthreads();
    for (; tile < last; tile += warps) {
      cp_async_wait<0>();
      __syncwarp();
      const uint8_t* in = stage + buf * kRows * L.pitch;
      const int next = tile + warps;
      if (next < last)
        stage_inputs_async<D>(a, side, head, next * kRows, tokens(next), stage + (buf ^ 1) * kRows * L.pitch, L.pitch,
                              lane);
      const int next_slot = slot_of(next);
      encode_tile<D, kBits, kCorrected>(a, c, cb, rot, frags, side, head, tile * kRows, tokens(tile), my_slot, in,
                                        recs, L, lane);
      __syncwarp();  // `in` and the records are reused two tiles on
      my_slot = next_slot;
      buf ^= 1;
    }
  }
}

template <int D>
DenseMmaLayout dense_mma_layout(int dtype) {
  DenseMmaLayout L;
  L.pitch = (D << (dtype == 0 ? 2 : 1)) + 16;
  L.rec_pitch = D / 2 + 16;
  L.frag_bytes = D * D * 4;
  L.warp_bytes = 2 * kRows * L.pitch + kRows * L.rec_pitch;
  // 16 warps where they fit beside the fragments (f16/bf16 inputs), else 8 (f32 at d = 128).
  const int room = max_block_smem() - static_cast<int>(sizeof(SharedCodebooks)) - L.frag_bytes;
  L.warps = kMaxWarps;
  while (L.warps > 1 && L.warps * L.warp_bytes > room) L.warps /= 2;
  return L;
}

}  // namespace

bool quantize_dense_mma_applies(const CodecDesc& c, RotationKind rotation, int d) {
  return c.kind == QuantKind::mse && rotation == RotationKind::dense && d <= kDenseMmaMaxDim;
}

void launch_quantize_dense_mma(const QuantizeArgs& a, int d, int n_sides, int sm_count, void* stream) {
  // The code width and correction are template arguments: sides that differ in them
  // launch apart.
  auto key = [&](int side) { return mse_uniform_bits(a.codec[side], d) * 2 + (a.codec[side].corrected ? 1 : 0); };
  if (n_sides == 2 && key(a.first_side) != key(a.first_side + 1)) {
    QuantizeArgs one = a;
    for (int s = a.first_side; s < a.first_side + 2; ++s) {
      one.first_side = s;
      launch_quantize_dense_mma(one, d, 1, sm_count, stream);
    }
    return;
  }
  auto s = static_cast<cudaStream_t>(stream);
  const int bits = mse_uniform_bits(a.codec[a.first_side], d);
  const bool corrected = a.codec[a.first_side].corrected;
  auto launch = [&]<int D, int kBits, bool kCorrected>() {
    const DenseMmaLayout L = dense_mma_layout<D>(a.dtype);
    const void* kernel = reinterpret_cast<const void*>(&quantize_dense_mma_kernel<D, kBits, kCorrected>);
    const int threads = L.warps * 32;
    const int per_sm = mma_occupancy(kernel, static_cast<int>(L.bytes()), threads);
    // One wave: every CTA takes an equal share of the tiles of all heads and sides.
    const int64_t work = int64_t{(a.n_tokens + kRows - 1) / kRows} * a.n_kv * n_sides;
    const int ctas = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(int64_t{sm_count} * per_sm, work)));
    quantize_dense_mma_kernel<D, kBits, kCorrected><<<ctas, threads, L.bytes(), s>>>(a, L, n_sides);
  };
  auto with_width = [&]<int D, bool kCorrected>() {
    switch (bits) {
      case 1: launch.template operator()<D, 1, kCorrected>(); break;
      case 2: launch.template operator()<D, 2, kCorrected>(); break;
      case 3: launch.template operator()<D, 3, kCorrected>(); break;
      case 4: launch.template operator()<D, 4, kCorrected>(); break;
      default: launch.template operator()<D, 0, kCorrected>();
    }
  };
  auto with_dim = [&]<int D>() {
    if (corrected)
      with_width.template operator()<D, true>();
    else
      with_width.template operator()<D, false>();
  };
  switch (d) {
    case 64: with_dim.template operator()<64>(); break;
    case 128: with_dim.template operator()<128>(); break;
    default: throw Error("quantize_on_write (tensor-core kernel): head size " + std::to_string(d) +
                         " is not supported (64 and 128: the rotation's fragments must fit shared memory)");
  }
  check_launch("quantize_dense_mma_kernel");
}

}  // namespace tq::cuda::detail
