#pragma once
// The head dimensions that fast paths are compiled for (the CPU kernels specialise on them,
// the CUDA kernels are instantiated only for them), with the one dispatch from a run-time
// head_dim to a compile-time D and the one error for any other size. The reference codecs
// take any dimension in [8, 1024] their layout allows; this list is about compiled code.
#include <string>
#include <string_view>

#include "turboquant/error.h"

namespace tq {

inline constexpr int kHeadDims[] = {64, 128, 256};

constexpr bool head_dim_compiled(int d) {
  for (int h : kHeadDims)
    if (h == d) return true;
  return false;
}

// tq::Error "<what>: head size <d> is not supported (supported: 64, 128, 256)".
[[noreturn]] inline void throw_unsupported_head_dim(std::string_view what, int d) {
  std::string list;
  for (int h : kHeadDims) list += (list.empty() ? "" : ", ") + std::to_string(h);
  throw Error(std::string(what) + ": head size " + std::to_string(d) + " is not supported (supported: " + list + ")");
}

// f.template operator()<D>() for D == d, one of kHeadDims; tq::Error (naming `what`) for
// any other d. Every D is instantiated, so each must compile for all three.
template <class F>
decltype(auto) dispatch_head_dim(int d, std::string_view what, F&& f) {
  static_assert(sizeof(kHeadDims) / sizeof(kHeadDims[0]) == 3, "dispatch_head_dim lists every kHeadDims entry");
  switch (d) {
    case 64: return f.template operator()<64>();
    case 128: return f.template operator()<128>();
    case 256: return f.template operator()<256>();
  }
  throw_unsupported_head_dim(what, d);
}

}  // namespace tq
