#pragma once
// Programmatic dependent launch (Hopper): a kernel launched with launch_pdl may start
// while the previous kernel in the stream is still running; it must call pdl_wait()
// before reading anything that kernel wrote. pdl_trigger() lets the next kernel start
// early. Both are no-ops before sm_90, where launch_pdl is a plain launch.
#include <cuda_runtime.h>

#include "cuda_check.h"

namespace tq::cuda::detail {

__device__ inline void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ inline void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// Compute capability 9.0 or newer (programmatic dependent launch, thread-block clusters).
inline bool pdl_supported() {
  int dev = 0, major = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute");
  return major >= 9;
}

// cudaLaunchKernelEx with the given launch attributes (n of them).
template <class Arg>
void launch_ex(void (*kernel)(Arg), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, const Arg& arg,
               cudaLaunchAttribute* attrs, unsigned n, const char* name) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attrs;
  cfg.numAttrs = n;
  check_cuda(cudaLaunchKernelEx(&cfg, kernel, arg), name);
}

template <class Arg>
void launch_pdl(void (*kernel)(Arg), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, const Arg& arg,
                const char* name) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  static const bool supported = pdl_supported();
  launch_ex(kernel, grid, block, smem, stream, arg, attr, supported ? 1 : 0, name);
}

// The launch attribute of clusters of cluster_x CTAs along x.
inline cudaLaunchAttribute cluster_attribute(int cluster_x) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = static_cast<unsigned>(cluster_x);
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  return attr;
}

// A launch whose CTAs form clusters of cluster_x along x (compute capability 9.0 and
// newer), without programmatic serialization: such a kernel reads what the previous one
// in the stream wrote before its first pdl_wait.
template <class Arg>
void launch_clustered(void (*kernel)(Arg), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, const Arg& arg,
                      int cluster_x, const char* name) {
  cudaLaunchAttribute attr = cluster_attribute(cluster_x);
  launch_ex(kernel, grid, block, smem, stream, arg, &attr, 1, name);
}

}  // namespace tq::cuda::detail
