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

// Whether any side of a launch of sides [first_side, first_side + n_sides) has a rotation
// kind `pred` accepts.
template <class Pred>
bool launch_any_rotation(const QuantizeArgs& a, int n_sides, Pred pred) {
  for (int s = a.first_side; s < a.first_side + n_sides; ++s)
    if (pred(a.rot_kind[s])) return true;
  return false;
}
inline bool launch_has_dense(const QuantizeArgs& a, int n_sides) {
  return launch_any_rotation(a, n_sides, [](RotationKind k) { return k == RotationKind::dense; });
}

// Whether a launch of ceil(tokens / tokens_per_cta) CTAs per KV head and side leaves SMs
// idle (fewer CTAs than SMs): such writes (decode steps, short chunks) take the kernels'
// small-write shapes.
inline bool ctas_leave_sms_idle(int64_t tokens, int tokens_per_cta, int n_kv, int n_sides, int sm_count) {
  return (tokens + tokens_per_cta - 1) / tokens_per_cta * n_kv * n_sides < sm_count;
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
