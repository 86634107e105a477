#pragma once
// Every CUDA runtime call goes through check_cuda, so a failure becomes a tq::Error that
// names the call, never a silent wrong result.
#include <cuda_runtime.h>

#include <string>

#include "turboquant/error.h"

namespace tq::cuda::detail {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(status));
}

// After a launch: configuration errors show up at once, execution errors at the next sync.
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

}  // namespace tq::cuda::detail
