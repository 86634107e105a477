#pragma once
// Host side: turn a tq::Codec into the descriptors the kernels read. Everything is
// derived from the public codec objects (the kind's quant_traits row, quantizers.h layout
// facts, Rotation::params() and rht_options()), so the kernels follow the CPU reference
// exactly.
#include <vector>

#include "device_desc.h"
#include "turboquant/codec.h"

namespace tq::cuda::detail {

// Throws tq::Error naming the codec when the CUDA kernels do not implement it.
CodecDesc make_codec_desc(const Codec& codec);

// A rotation's parameters on the host, in the form the kernels read.
struct RotationHost {
  RotationKind kind = RotationKind::none;
  int rounds = 0;
  float scale = 1.f;
  std::vector<float> matrix, matrix_t, signs;
  std::vector<int32_t> perm;
  std::vector<BlockRow> rows;
  std::vector<uint32_t> mma_b;  // RotationDesc::mma_b (dense, dim <= kDenseMmaMaxDim)
  float mma_unscale = 1.f;
};
RotationHost make_rotation_host(const Rotation& rotation);

// The tensor-core quantize's B fragments of the forward matrix f (n x n, row-major; y = f x):
// f scaled by 2^e so its largest entry lies in [2^14, 2^15), each entry split into an
// f16 high half and an f16 low half (the rest), laid out as RotationDesc::mma_b says.
constexpr int kDenseMmaMaxDim = 128;  // 64 KB of fragments at 128; 256 would need 256 KB
std::vector<uint32_t> dense_mma_fragments(const std::vector<float>& f, int n, float& unscale);

// A calibrated codec's run table and level table (the device pointers of its CodecDesc
// are filled in by the caller after upload). `lane_coords` = head_dim / 32: every run
// boundary must fall on a multiple of min(lane_coords, 4) so that a lane of the decode
// kernel reads at most two runs; tq::Error naming the codec otherwise.
// lut_bytes, paired: the tile kernel's f16 level tables (GroupRun::lut_off), of pairs unless
// a run is wider than kPairMaxBits or they would pass kPairBudgetBytes.
struct GroupedHost {
  std::vector<GroupRun> runs;
  std::vector<float> table;
  int32_t lut_bytes = 0;
  bool paired = false;
};
GroupedHost make_grouped_host(const Codec& codec, int lane_coords);

// The affine map as dense rotation parameters: for quantize-on-write (matrix_t = Pᵀ) or
// for attention (matrix = P⁻ᵀ, matrix_t = P⁻¹); mu travels separately.
RotationHost make_affine_host(const AffineMap& map, bool for_attention);

}  // namespace tq::cuda::detail
