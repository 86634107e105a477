#pragma once
// Arguments of the quantize-on-write kernels (quantize.cu: one CTA per tile of vectors,
// for every codec; quantize_warp.cu: one warp per vector, for the codecs it covers).
#include <cstdint>

#include "device_desc.h"
#include "write_status.h"

namespace tq::cuda::detail {

struct QuantizeArgs {
  CodecDesc codec[2];
  const RotationDesc* rotations[2];
  uint8_t* pool[2];
  int64_t block_bytes[2];
  const void* src[2];
  int dtype;
  int n_tokens;
  int64_t token_stride;
  const int32_t* slots;
  int n_kv;
  int block_tokens;
  int vector_loads;  // inputs 16-byte aligned: load 16 bytes per thread
  int block_shift;   // log2(block_tokens) when a power of two, else -1
  int first_side;    // blockIdx.z + first_side is the side (0 keys, 1 values)
  RotationKind rot_kind[2];  // every head's rotation kind and Hadamard round count, as
  int rot_rounds[2];    // uniform kernel parameters
  WriteStatus* status;  // the layer's: refused inputs, saturated records
  // Sinks: code-space rows of positions < sink_tokens go to sinks[side] (null: none).
  float* sinks[2];
  const int32_t* positions;
  const int32_t* seq_ids;
  int sink_tokens, sink_seqs;
  // The keys' RoPE frames (range 0: none): side 0 vectors are turned back by the frame of
  // positions[t] before the affine map (the CPU cache's KvCache::append).
  FrameDesc frames;
  int warp_tokens;  // the warp kernel's tokens per warp (set by launch_quantize_warp)
};

// Whether a launch of sides [first_side, first_side + n_sides) holds a dense rotation.
inline bool launch_has_dense(const QuantizeArgs& a, int n_sides) {
  for (int s = a.first_side; s < a.first_side + n_sides; ++s)
    if (a.rot_kind[s] == RotationKind::dense) return true;
  return false;
}

// The warp-per-vector kernel covers f16, q8_0, q4_0, fp8 and mse records under every
// rotation kind; not the group and calibrated (grouped) codecs, and no affine map (the
// caller checks that, with sinks and RoPE frames). A dense rotation needs its Qᵀ in
// shared memory (d ≤ kWarpDenseMaxDim) and costs a warp D² multiply-adds per vector, so
// auto_ sends it only writes too small to fill the GPU (decode steps). fp8 exists only
// unrotated (codec_desc.cpp), so only the warp kernel's plain path writes it.
constexpr int kWarpDenseMaxDim = 128;
bool quantize_warp_applies(const CodecDesc& c, RotationKind rotation, int d);
void launch_quantize_warp(const QuantizeArgs& a, int d, int n_sides, int sm_count, void* stream);

// The tensor-core kernel (quantize_dense_mma.cu): dense rotations with mse codes at head
// sizes up to kDenseMmaMaxDim, no affine map (RotationDesc::mma_b set), under the near-tie
// contract (docs/CUDA.md). The caller checks sinks and RoPE frames.
bool quantize_dense_mma_applies(const CodecDesc& c, RotationKind rotation, int d);
void launch_quantize_dense_mma(const QuantizeArgs& a, int d, int n_sides, int sm_count, void* stream);

}  // namespace tq::cuda::detail
