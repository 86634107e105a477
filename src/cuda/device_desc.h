#pragma once
// Plain descriptors the kernels read: what a codec row means in bytes (CodecDesc, passed
// by value as a kernel argument) and one rotation's parameters in device memory
// (RotationDesc, one per layer / KV head / K or V). Built on the host from tq::Codec
// (codec_desc.cpp); no CUDA types, so host C++ and device code share them.
#include <cstdint>

#include "turboquant/codec.h"
#include "turboquant/rotation.h"

namespace tq::cuda::detail {

// Kernels switch on the core's own enums: QuantKind (the quant_traits row) for the record
// layout, RotationKind for the rotation. The chunk rotations (rotor3, quat4, quat4_left,
// givens2) reach the kernels as block rows probed on the host, so the kernels treat those
// four kinds alike.

constexpr int kMaxLevels = 16;  // mse codes up to 4 bits

// One run of a calibrated (grouped) record: coordinates [begin, begin + size) coded with
// `bits` (0: nothing stored, decodes to zero), the norm at byte `offset` (2: fp16, 1: log
// byte √size · 2^((c − 128)/16)), the codes from offset + norm_bytes. Levels and
// boundaries sit in the side's table (GroupedTable) at level_off and bound_off.
struct GroupRun {
  int32_t begin, size, bits, norm_bytes, offset, level_off, bound_off;
  // Byte offset of the run's f16 level table in the side's table area (CodecDesc::lut_bytes),
  // for the tile decode kernel. Paired: entry i | j << bits is the half2 (level i, level j),
  // so one load yields two coordinates; else entry i is level i. Width-0 runs point at a
  // zero entry.
  int32_t lut_off;
  float sqrt_size;  // std::sqrt(float(size)), as GroupedMseQuantizer::load_norm
  // Log-byte norm of code c > 0 as 2^(c · log2_step + log2_off) (√size folded in): the tile
  // decode kernel computes it instead of reading the factor table (make_grouped_host checks
  // the series against the table).
  float log2_step, log2_off;
};
// Floats at the start of a grouped table: log_norm_factor(code) for the 256 byte codes.
constexpr int kLogFactors = 256;
constexpr int kScaleTrials = 11;  // the encoder's trial scales 2^(-j/16), j = -5..5
// Pair tables hold (2^bits)² entries: a side has them when every run is at most 5 bits
// wide (4 KiB a table) and they fit in this many bytes (shared memory the tile kernel's
// occupancy can spare); single-level tables otherwise.
constexpr int kPairMaxBits = 5;
constexpr int kPairBudgetBytes = 12288;

struct CodecDesc {
  QuantKind kind = QuantKind::f16;
  int32_t dim = 0;
  int32_t record_bytes = 0;
  // mse: [fp16 norm][n_hi codes of bits_hi][dim - n_hi codes of bits_lo]
  int32_t n_hi = 0, bits_hi = 0, bits_lo = 0, hi_offset = 0, lo_offset = 0;
  int32_t corrected = 0;
  float levels_hi[kMaxLevels] = {}, levels_lo[kMaxLevels] = {};
  float bounds_hi[kMaxLevels - 1] = {}, bounds_lo[kMaxLevels - 1] = {};
  // group: per `group` coordinates [fp16 min][fp16 step][codes of group_bits]
  int32_t group = 0, group_bits = 0, group_bytes = 0;
  // grouped (calibrated presets): runs and a table [log factors][levels, boundaries of
  // each distinct codebook] in device memory, shared by every head of the side.
  int32_t n_runs = 0, table_floats = 0;
  int32_t lut_bytes = 0;  // the tile decode kernel's f16 level tables (GroupRun::lut_off)
  int32_t paired = 0;     // ... of pairs (1) or single levels (0)
  const GroupRun* runs = nullptr;
  const float* table = nullptr;
  double trial_scale[kScaleTrials] = {};  // exp2(-j/16.0) for j = -5..5, from the host's libm
};

// One coordinate's row of a block-diagonal rotation: y[i] = sum_k m[k] * x[off + k].
struct BlockRow {
  int32_t off;
  int32_t size;  // 1..4
  float m[4];
};

struct RotationDesc {
  RotationKind kind = RotationKind::none;
  int32_t rounds = 0;           // rht
  float scale = 1.f;            // rht: 1/sqrt(n) as the CPU computes it
  const float* matrix = nullptr;    // dense: row-major Q (inverse reads it)
  const float* matrix_t = nullptr;  // dense: Qᵀ (forward reads it, coalesced)
  const float* signs = nullptr;     // rht: rounds x dim, ±1
  const int32_t* perm = nullptr;    // rht: dim (the identity permutation when not permuted)
  const BlockRow* rows = nullptr;   // block: dim rows
  // Affine maps (calibrated presets) are dense: quantize reads matrix_t = Pᵀ and subtracts
  // mu first; attention reads matrix = P⁻ᵀ (query), matrix_t = P⁻¹ (output) and adds mu.
  const float* mu = nullptr;
  // dense, head_dim <= 128 (the tensor-core quantize, quantize_dense_mma.cu): F·2^e split
  // into f16 high and low halves in mma.m16n8k16 B-fragment order, [n-tile][k-step][lane]
  // x {hi b0, hi b1, lo b0, lo b1}; mma_unscale = 2^-e (null, 1: none).
  const uint32_t* mma_b = nullptr;
  float mma_unscale = 1.f;
};

// RoPE frames of a layer's keys (rope_frame.h) on the device: a key at position p is
// stored turned back by the rotation at frame p / range's start, and attention scores it
// with the query turned back by the same. turns[f][i] = (cos, sin) of that rotation for
// each first coordinate i of a pair (i < partner[i]), the floats RopeFrames::turn_back
// gives on the host; frame 0 is the identity (never applied). range 0: no frames.
struct FrameDesc {
  int32_t range = 0;
  int32_t n_frames = 0;             // rows of turns: the cache's capacity / range, rounded up
  const int32_t* partner = nullptr;  // [head_dim]
  const float* turns = nullptr;      // [n_frames][head_dim][2]
};

}  // namespace tq::cuda::detail
