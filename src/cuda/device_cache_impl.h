#pragma once
// What DeviceKvCache holds per layer and per side (K or V): the codec descriptor, one
// rotation descriptor per KV head in device memory, and the pool.
#include <array>
#include <vector>

#include "device_desc.h"
#include "turboquant/cuda.h"

namespace tq::cuda {

struct DeviceKvCache::Impl {
  struct Side {
    detail::CodecDesc desc;
    std::vector<Codec> codecs;                    // one per KV head (own seed)
    detail::RotationDesc* rotations = nullptr;    // device [n_kv_heads]
    detail::RotMode rot_mode = detail::RotMode::identity;
    int rot_rounds = 0;
    uint8_t* pool = nullptr;                      // device [num_blocks][block_bytes]
    size_t record_bytes = 0;
    size_t block_bytes = 0;
  };
  std::vector<std::array<Side, 2>> layers;
  std::vector<void*> allocations;  // every cudaMalloc, freed by ~DeviceKvCache
  int sm_count = 0;
};

}  // namespace tq::cuda
