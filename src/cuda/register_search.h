#pragma once
// Codebook::index_of for codes of at most 3 bits over boundaries held in registers: the
// binary search's compares, each boundary picked by selects on the compares above it, so
// a code costs no shared-memory load (the quantize kernels' search had three dependent
// ones per code). Host and device: tests/cuda/test_register_search.cpp checks it against
// Codebook::index_of on the CPU.
#include <cstdint>

#include "host_device.h"

namespace tq::cuda::detail {

template <int kBits>
struct RegBounds {
  static_assert(kBits >= 1 && kBits <= 3, "register boundaries for 1-3 bit codes");
  float b[(1 << kBits) - 1];
};

// The boundary the search compares with at level S: b[base + 2^S - 1], base the sum of
// the steps taken at levels kBits-1 .. S+1, picked by selects on their compares.
template <int kBits, int S, int L = kBits - 1, int Base = 0>
TQ_HOST_DEVICE inline float searched_bound(const RegBounds<kBits>& r, const bool (&p)[kBits]) {
  if constexpr (L == S)
    return r.b[Base + (1 << S) - 1];
  else
    return p[L] ? searched_bound<kBits, S, L - 1, Base + (1 << L)>(r, p) : searched_bound<kBits, S, L - 1, Base>(r, p);
}

template <int kBits, int S>
TQ_HOST_DEVICE inline void search_level(float t, const RegBounds<kBits>& r, bool (&p)[kBits], uint32_t& code) {
  p[S] = t >= searched_bound<kBits, S>(r, p);
  code |= p[S] ? 1u << S : 0u;
  if constexpr (S > 0) search_level<kBits, S - 1>(t, r, p, code);
}

// The number of boundaries <= t (ties go up, NaN to 0), as Codebook::index_of.
template <int kBits>
TQ_HOST_DEVICE inline uint32_t bucketize_regs(float t, const RegBounds<kBits>& r) {
  bool p[kBits];
  uint32_t code = 0;
  search_level<kBits, kBits - 1>(t, r, p, code);
  return code;
}

}  // namespace tq::cuda::detail
