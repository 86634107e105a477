#pragma once
// The one function turboquant._turboquant hands to the torch op library (_torch_ops.so) by
// address: decode attention on a DeviceKvCache. The op library links torch, not turboquant,
// so its C++ kernel for turboquant::attend reaches the cache through this pointer; both
// modules are built from one tree, so they agree on DecodeParams.

#include "turboquant/cuda.h"

namespace tq::py {

// 0 when the step was launched, 1 when the library refused it (the caller then takes the
// Python path, which raises the library's error with its message).
using DecodeEntry = int (*)(const cuda::DeviceKvCache* cache, const cuda::DecodeParams* p) noexcept;

}  // namespace tq::py
