#pragma once
// What DeviceKvCache holds per layer and per side (K or V): the codec descriptor, one
// rotation descriptor per KV head in device memory, and the pool; per layer the status
// the quantize-on-write kernels report in.
#include <array>
#include <vector>

#include "device_desc.h"
#include "turboquant/cuda.h"
#include "write_status.h"

namespace tq::cuda {

struct DeviceKvCache::Impl {
  struct Side {
    detail::CodecDesc desc;
    detail::RotationDesc* rotations = nullptr;    // device [n_kv_heads], read by attention
    detail::RotationDesc* enc_rotations = nullptr;  // read by quantize (the affine forward; else == rotations)
    RotationKind rot_kind = RotationKind::none;
    int rot_rounds = 0;
    uint8_t* pool = nullptr;                      // device [num_blocks][block_bytes]
    size_t record_bytes = 0;
    size_t block_bytes = 0;
    float* sinks = nullptr;  // device [num_blocks][sink_tokens][n_kv_heads][head_dim], null without sinks
    detail::FrameDesc frames;  // keys in RoPE frames (KvCachePlan::key_frames); range 0 otherwise
  };
  std::vector<std::array<Side, 2>> layers;
  detail::WriteStatus* status = nullptr;  // device [n_layers]: what the writes refused or saturated
  std::vector<void*> allocations;  // every cudaMalloc, freed by ~DeviceKvCache
  int sm_count = 0;
};

namespace detail {
// After the writes have completed: reads every layer's WriteStatus, adds its counts to
// tq::range_events(), resets it, and throws the CPU cache's message for the first refused
// input (lowest layer, then position order).
void check_write_status(const DeviceKvCache::Impl& impl, const char* where);
}  // namespace detail

}  // namespace tq::cuda
