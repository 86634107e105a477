#pragma once
// What the quantize-on-write kernels report to the host (docs/FORMATS.md, "Range"): per
// layer, the first NaN/Inf input they refused and counts of refused and saturated
// vectors. Device memory, read back and reset by check_write_status (write_status.cpp).
// No CUDA types, so host C++ and device code share it.
#include <cstdint>

#if defined(__CUDACC__)
#define TQ_HOST_DEVICE __host__ __device__
#else
#define TQ_HOST_DEVICE
#endif

namespace tq::cuda::detail {

struct WriteStatus {
  unsigned long long first_bad = ~0ull;  // the smallest BadValue key; ~0 = none
  unsigned long long nonfinite = 0;      // vectors refused for a NaN/Inf input
  unsigned long long saturated = 0;      // vectors with a saturated fp16 field
};

// A refused input as one integer whose order is the CPU cache's (position, then K before
// V, then KV head, then coordinate), so atomicMin keeps the one KvCache::append names.
struct BadValue {
  int token = 0;  // index in the write, < 2^31
  int side = 0;   // 0 keys, 1 values
  int head = 0;   // < 2^15
  int coord = 0;  // < 2^9 (head_dim <= 256)
  int kind = 0;   // 0 NaN, 1 +Inf, 2 -Inf

  TQ_HOST_DEVICE unsigned long long key() const {
    return static_cast<unsigned long long>(token) << 27 | static_cast<unsigned long long>(side) << 26 |
           static_cast<unsigned long long>(head) << 11 | static_cast<unsigned long long>(coord) << 2 |
           static_cast<unsigned long long>(kind);
  }
  TQ_HOST_DEVICE static BadValue from_key(unsigned long long k) {
    return {static_cast<int>(k >> 27), static_cast<int>((k >> 26) & 1), static_cast<int>((k >> 11) & 0x7fff),
            static_cast<int>((k >> 2) & 0x1ff), static_cast<int>(k & 3)};
  }
};

inline constexpr int kMaxStatusHeads = 1 << 15;

}  // namespace tq::cuda::detail
