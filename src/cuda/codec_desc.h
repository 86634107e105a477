#pragma once
// Host side: turn a tq::Codec into the descriptors the kernels read. Everything is
// derived from the public codec objects (quantizers.h layout facts, Rotation::params()
// and Rotation::serialize() options), so the kernels follow the CPU reference exactly.
#include <vector>

#include "device_desc.h"
#include "turboquant/codec.h"

namespace tq::cuda::detail {

// Throws tq::Error naming the codec when the CUDA kernels do not implement it.
CodecDesc make_codec_desc(const Codec& codec);

// A rotation's parameters on the host, in the form the kernels read.
struct RotationHost {
  RotMode mode = RotMode::identity;
  int rounds = 0;
  float scale = 1.f;
  std::vector<float> matrix, matrix_t, signs;
  std::vector<int32_t> perm;
  std::vector<BlockRow> rows;
};
RotationHost make_rotation_host(const Rotation& rotation);

}  // namespace tq::cuda::detail
