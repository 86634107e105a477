#pragma once
// The warp quantize kernel's encoder for several tokens per warp (quantize_warp.cu): one
// 32-coordinate block per lane, lane = token · D/32 + block, so a token's D/32 lanes are
// neighbours and a block costs one lane what takes the whole warp one vector at a time
// (~680 warp instructions per d = 128 rht3 vector at 262K vectors, issue-bound). For
// unrotated and rht records: the Hadamard's first five stages run inside the lane, the
// rest as shuffles between the token's lanes. Block rotations keep the one-vector path
// (their rows gather across lanes: ten loads per coordinate made iso3 slower here).
// Arithmetic as the tiled kernel's (quantize.cu) and Codec::encode, step for step: the
// Hadamard's stages in the reference's order, ‖y‖² in double (summed per lane, then over
// the token's lanes: a near-tie at worst, as quantize.cu's tree).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cfloat>
#include <type_traits>

#include "codebook_device.cuh"
#include "warp_encode.cuh"

namespace tq::cuda::detail {

// rht's permutation with the first round's signs, one word per coordinate: the source
// index in the low bits, the sign in bit 31. The CTA builds it in shared memory once for
// its head, so a gathered coordinate is one table load, one element load and a sign flip
// (exactly the reference's product by ±1 of a finite value; non-finite vectors are
// refused).
constexpr uint32_t kSignBit = 0x80000000u;
__device__ inline uint32_t signed_perm_entry(const RotationDesc& r, int i) {
  return static_cast<uint32_t>(__ldg(r.perm + i)) | (__ldg(r.signs + i) < 0.f ? kSignBit : 0u);
}

// rht's first step on the lane's block: y[e] = ±x[perm[32·b + e]] with the first round's
// sign, from the staged row (one gather loop per input type: a per-element type switch
// would sit in the loop).
template <int D>
__device__ inline void rht_gather(const uint32_t* signed_perm, const uint8_t* row, int dtype, int b, float (&y)[32]) {
  const uint4* sp4 = reinterpret_cast<const uint4*>(signed_perm + 32 * b);
  auto gather = [&](auto elem) {
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      const uint4 sp = sp4[q];
      const uint32_t w[4] = {sp.x, sp.y, sp.z, sp.w};
#pragma unroll
      for (int k = 0; k < 4; ++k)
        y[4 * q + k] = __uint_as_float(__float_as_uint(elem(w[k] & ~kSignBit)) ^ (w[k] & kSignBit));
    }
  };
  if (dtype == 0)
    gather([&](uint32_t i) { return reinterpret_cast<const float*>(row)[i]; });
  else if (dtype == 1)
    gather([&](uint32_t i) { return __half2float(reinterpret_cast<const __half*>(row)[i]); });
  else
    gather([&](uint32_t i) { return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(row)[i]); });
}

// The rest of rht on the lane's gathered block: y becomes (R x)[32·b + e]. The first five
// Hadamard stages run inside the lane, the rest as shuffles between the token's lanes:
// every lane calls it, and lanes of other tokens, dead ones included, never mix in.
// Stages, products and rounding as RhtRotation::forward.
template <int D>
__device__ inline void rht_rounds(int rounds, const RotationDesc& r, int b, float (&y)[32]) {
  constexpr int BPV = D / 32;
  const int i0 = 32 * b;
  for (int round = 0; round < rounds; ++round) {
    if (round > 0) {
#pragma unroll
      for (int e = 0; e < 32; ++e) y[e] = __fmul_rn(y[e], __ldg(r.signs + round * D + i0 + e));
    }
#pragma unroll
    for (int h = 1; h < 32; h <<= 1)
#pragma unroll
      for (int e = 0; e < 32; ++e)
        if ((e & h) == 0) {
          const float lo = y[e], hi = y[e + h];
          y[e] = __fadd_rn(lo, hi);
          y[e + h] = __fsub_rn(lo, hi);
        }
    // The partner's sum (lower lane) or difference (upper lane) as one rounding:
    // fma(y, ±1, other) is other ± y.
#pragma unroll
    for (int hb = 1; hb < BPV; hb <<= 1) {
      const float sign = (b & hb) ? -1.f : 1.f;
#pragma unroll
      for (int e = 0; e < 32; ++e) y[e] = __fmaf_rn(y[e], sign, __shfl_xor_sync(kFull, y[e], hb));
    }
#pragma unroll
    for (int e = 0; e < 32; ++e) y[e] = __fmul_rn(y[e], r.scale);
  }
}

// Lane's block of an mse record (codes 32·b .. 32·b + 31 in groups of eight: a group of
// b-bit codes is b whole bytes) into dst, and block 0 the fp16 norm. Every lane calls it
// (the norms are sums over the token's lanes); only `write` lanes store. kBits: the width
// of every code (1-4), known at compile time so the search and the byte stores unroll
// without branches; 0: each group's width from the codec (fractional widths). The
// corrected norm's sum of levels likewise runs only where kCorrected.
template <int D, int kBits, bool kCorrected>
__device__ inline void encode_mse_block(const CodecDesc& c, const SharedCodebooks& cb, const float (&y)[32],
                                        uint8_t* dst, int b, bool write, bool& clamped) {
  constexpr int BPV = D / 32;
  double n2 = 0;
#pragma unroll
  for (int e = 0; e < 32; ++e) n2 += static_cast<double>(y[e]) * y[e];
#pragma unroll
  for (int off = 1; off < BPV; off <<= 1) n2 += __shfl_xor_sync(kFull, n2, off);
  const float norm = static_cast<float>(sqrt(n2));
  const float inv = reciprocal_or_zero(norm);
  double c2 = 0;
#pragma unroll
  for (int g = 0; g < 4; ++g) {
    const int i = 32 * b + 8 * g;
    const int half = i < c.n_hi ? 0 : 1;
    const int bits = kBits ? kBits : half ? c.bits_lo : c.bits_hi;
    const float* bounds = cb.bounds[half];
    uint32_t w = 0;
#pragma unroll
    for (int t = 0; t < 8; ++t) {
      const float v = __fmul_rn(y[8 * g + t], inv);
      int idx;
      if constexpr (kBits > 0)
        idx = bucketize<kBits>(v, bounds);
      else
        idx = bucketize(v, bounds, bits);
      w |= static_cast<uint32_t>(idx) << (t * bits);
      if constexpr (kCorrected) {
        const float l = cb.levels[half][idx];
        c2 += static_cast<double>(l) * l;
      }
    }
    const int byte0 = half ? c.lo_offset + (i - c.n_hi) / 8 * bits : c.hi_offset + i / 8 * bits;
    if (write) {
      if constexpr (kBits > 0) {
#pragma unroll
        for (int k = 0; k < kBits; ++k) dst[byte0 + k] = static_cast<uint8_t>(w >> (8 * k));
      } else {
        for (int k = 0; k < bits; ++k) dst[byte0 + k] = static_cast<uint8_t>(w >> (8 * k));
      }
    }
  }
  if constexpr (kCorrected) {
#pragma unroll
    for (int off = 1; off < BPV; off <<= 1) c2 += __shfl_xor_sync(kFull, c2, off);
  }
  if (write && b == 0)
    store_half_field(dst, kCorrected && norm > 0.f ? static_cast<float>(static_cast<double>(norm) / sqrt(c2)) : norm,
                     clamped);
}

// encode_mse_block with the codec's width and correction as template arguments.
template <int D>
__device__ inline void encode_mse_block(const CodecDesc& c, const SharedCodebooks& cb, const float (&y)[32],
                                        uint8_t* dst, int b, bool write, bool& clamped) {
  const int bits = mse_uniform_bits(c, D);  // 0: fractional, each group's own
  auto run = [&](auto corrected) {
    switch (bits) {
      case 1: encode_mse_block<D, 1, decltype(corrected)::value>(c, cb, y, dst, b, write, clamped); break;
      case 2: encode_mse_block<D, 2, decltype(corrected)::value>(c, cb, y, dst, b, write, clamped); break;
      case 3: encode_mse_block<D, 3, decltype(corrected)::value>(c, cb, y, dst, b, write, clamped); break;
      case 4: encode_mse_block<D, 4, decltype(corrected)::value>(c, cb, y, dst, b, write, clamped); break;
      default: encode_mse_block<D, 0, decltype(corrected)::value>(c, cb, y, dst, b, write, clamped);
    }
  };
  if (c.corrected)
    run(std::true_type{});
  else
    run(std::false_type{});
}

// The records of all the warp's staged tokens at once (T tokens, rows `pitch` bytes
// apart in `in`). The D/32 lanes of a token share NaN/Inf refusal, fp8's vector scale,
// the mse norm and the saturation count through shuffles. Records are built over the
// staged rows once every lane has read its inputs, then leave token by token in words
// as wide as the pool's alignment allows, each token's address computed once by its
// lane (copy_staged_records). kRotatedMse: rht and
// mse records too (the lane-block kernel); else unrotated plain records only.
template <int D, int T, bool kRotatedMse>
__device__ inline void encode_lane_blocks(const QuantizeArgs& a, const CodecDesc& c, const SharedCodebooks& cb,
                                          const RotationDesc& rot, const uint32_t* signed_perm, int side, int head,
                                          int t0, int n, uint8_t* in, int pitch, int my_slot, int lane) {
  constexpr int BPV = D / 32;
  static_assert(T * BPV <= 32, "a lane per block");
  const int j = lane / BPV, b = lane % BPV;
  const int slot = __shfl_sync(kFull, my_slot, j);
  const bool live = lane < T * BPV && j < n && slot >= 0;
  const uint8_t* row = in + min(j, T - 1) * pitch;
  const bool rht = kRotatedMse && a.rot_kind[side] == RotationKind::rht;
  // x: the lane's inputs [32b, 32b + 32), or for rht its permuted, signed ones (every
  // input once over the token's lanes).
  float x[32];
  if (rht) {
    rht_gather<D>(signed_perm, row, a.dtype, b, x);
  } else {
    load_lane<32>(row, 32 * b, a.dtype, x);
  }
  // NaN/Inf inputs are refused (docs/FORMATS.md, "Range"): the token's first bad
  // coordinate is reported by the lane holding it, the count by the token's block 0.
  // Searched for only in warps that hold one.
  bool finite = true;
#pragma unroll
  for (int e = 0; e < 32; ++e) finite = finite && fabsf(x[e]) <= FLT_MAX;
  int first = D;
  if (__any_sync(kFull, live && !finite)) {
    int bad = D;
    float bad_x = 0.f;
#pragma unroll
    for (int e = 31; e >= 0; --e) {
      const uint32_t sp = rht ? signed_perm[32 * b + e] : 32 * b + e;
      const int at = static_cast<int>(sp & ~kSignBit);
      if (!isfinite(x[e]) && at < bad) bad = at, bad_x = __uint_as_float(__float_as_uint(x[e]) ^ (sp & kSignBit));
    }
    first = live ? bad : D;
#pragma unroll
    for (int off = 1; off < BPV; off <<= 1) first = min(first, __shfl_xor_sync(kFull, first, off));
    if (live && first < D) {
      if (bad == first) note_bad_value(a.status, t0 + j, side, head, first, bad_x);
      if (b == 0) atomicAdd(&a.status->nonfinite, 1ull);
    }
  }
  const bool write = live && first == D;
  // Dead lanes rotate whatever their row holds, among themselves, and write nothing.
  if (rht) rht_rounds<D>(a.rot_rounds[side], rot, b, x);
  float amax = 0.f;
  if (c.kind != QuantKind::mse) {
#pragma unroll
    for (int e = 0; e < 32; ++e) amax = fmaxf(amax, fabsf(x[e]));
  }
  bool clamped = false;
  const int rb = c.record_bytes;  // even; T records fit in the staged inputs' rows
  uint8_t* dst = in + j * rb;
  __syncwarp();  // every lane holds its inputs: their rows take the records
  if (kRotatedMse && c.kind == QuantKind::mse) {
    if constexpr (kRotatedMse) encode_mse_block<D>(c, cb, x, dst, b, write, clamped);
  } else if (c.kind == QuantKind::fp8) {  // [fp16 s][D E4M3 codes]: one scale for the vector
#pragma unroll
    for (int off = 1; off < BPV; off <<= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, off));
    if (write) {
      const uint16_t sb = fp8_scale_bits(amax, clamped);
      const float inv = reciprocal_or_zero(__half2float(__ushort_as_half(sb)));
      if (b == 0) *reinterpret_cast<uint16_t*>(dst) = sb;
#pragma unroll
      for (int e = 0; e < 32; e += 2)
        *reinterpret_cast<uint16_t*>(dst + 2 + 32 * b + e) = __nv_cvt_float2_to_fp8x2(
            make_float2(__fmul_rn(x[e], inv), __fmul_rn(x[e + 1], inv)), __NV_SATFINITE, __NV_E4M3);
    }
  } else if (write && c.kind == QuantKind::f16) {
    uint32_t* out = reinterpret_cast<uint32_t*>(dst + 64 * b);
#pragma unroll
    for (int e = 0; e < 32; e += 2)
      out[e / 2] = half_field_bits(x[e], clamped) | static_cast<uint32_t>(half_field_bits(x[e + 1], clamped)) << 16;
  } else if (write && c.kind == QuantKind::q8_0) {
    const float d = __fdiv_rn(amax, 127.f);
    const float id = reciprocal_or_zero(d);
    uint8_t* out = dst + 34 * b;
    store_half_field(out, d, clamped);
#pragma unroll
    for (int e = 0; e < 32; e += 2) {
      const uint32_t q0 = static_cast<uint8_t>(static_cast<int8_t>(roundf(__fmul_rn(x[e], id))));
      const uint32_t q1 = static_cast<uint8_t>(static_cast<int8_t>(roundf(__fmul_rn(x[e + 1], id))));
      *reinterpret_cast<uint16_t*>(out + 2 + e) = static_cast<uint16_t>(q0 | (q1 << 8));
    }
  } else if (write) {  // q4_0: the first element of largest magnitude, in index order
    float top = 0.f, mx = 0.f;
#pragma unroll
    for (int e = 0; e < 32; ++e)
      if (top < fabsf(x[e])) top = fabsf(x[e]), mx = x[e];
    const float d = __fdiv_rn(mx, -8.f);
    const float id = reciprocal_or_zero(d);
    uint8_t* out = dst + 18 * b;
    store_half_field(out, d, clamped);
#pragma unroll
    for (int e = 0; e < 16; e += 2) {
      const int q0 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[e], id), 8.5f)));
      const int q1 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[e + 1], id), 8.5f)));
      const int h0 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[e + 16], id), 8.5f)));
      const int h1 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[e + 17], id), 8.5f)));
      *reinterpret_cast<uint16_t*>(out + 2 + e) = static_cast<uint16_t>((q0 | (h0 << 4)) | ((q1 | (h1 << 4)) << 8));
    }
  }
  bool any = clamped;
#pragma unroll
  for (int off = 1; off < BPV; off <<= 1) any |= __shfl_xor_sync(kFull, any, off) != 0;  // every lane shuffles
  const unsigned saturated = __ballot_sync(kFull, any && write && b == 0);
  if (lane == 0 && saturated) atomicAdd(&a.status->saturated, static_cast<unsigned long long>(__popc(saturated)));
  const unsigned written = __ballot_sync(kFull, write && b == 0);  // bit r·BPV: token r is written
  uint8_t* my_dst = lane < n && my_slot >= 0 ? record_at(a, side, head, my_slot, rb) : nullptr;
  __syncwarp();
  copy_staged_records(a, side, rb, in, rb, n, written, BPV, my_dst, lane);
}

}  // namespace tq::cuda::detail
