#pragma once
// Asynchronous global-to-shared copies (cp.async, sm_80+) shared by the decode and
// quantize kernels.
#include <cstdint>

namespace tq::cuda::detail {

// One 16-byte copy (both addresses 16-byte aligned), cached in L2 only. The L2::256B hint
// fetches the whole 256-byte span from DRAM: every caller streams runs of consecutive
// records, so the neighbouring sectors are read next (H100: decode at 64K 1-5% faster for
// f16, q8_0, turbo3; BENCHMARKS.md, session 33).
__device__ inline void cp_async16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Copies `bytes` (a multiple of 8; 16-byte chunks when possible) from global to shared
// memory asynchronously, kLanes lanes (lane in [0, kLanes)) taking consecutive chunks.
// kAnyAlign (calibrated records): a multiple of 4, chunks of the widest size (16, 8 or 4
// bytes) that both addresses and the length allow, since odd-sized calibrated records
// give tiles and blocks aligned to 4 or 8 bytes only. (Testing the address in every
// kernel had cost the d = 128 CUDA-core kernels registers.)
template <bool kAnyAlign, int kLanes = 32>
__device__ inline void copy_tile_async(uint32_t dst, const uint8_t* src, int bytes, int lane) {
  const unsigned align =
      kAnyAlign ? static_cast<unsigned>(reinterpret_cast<uintptr_t>(src)) | dst | static_cast<unsigned>(bytes)
                : bytes;
  if ((align & 15) == 0) {
    for (int off = lane * 16; off < bytes; off += kLanes * 16)
      cp_async16(dst + off, src + off);
  } else if (!kAnyAlign || (align & 7) == 0) {
    for (int off = lane * 8; off < bytes; off += kLanes * 8)
      asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(dst + off), "l"(src + off));
  } else {
    for (int off = lane * 4; off < bytes; off += kLanes * 4)
      asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst + off), "l"(src + off));
  }
}

}  // namespace tq::cuda::detail
