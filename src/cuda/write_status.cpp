// The host side of the write status (write_status.h): counts go to tq::range_events(), a
// refused input becomes the CPU cache's error message.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "device_cache_impl.h"
#include "turboquant/range.h"

namespace tq::cuda::detail {

void check_write_status(const DeviceKvCache::Impl& impl, const char* where) {
  const size_t n = impl.layers.size();
  std::vector<WriteStatus> st(n);
  check_cuda(cudaMemcpy(st.data(), impl.status, n * sizeof(WriteStatus), cudaMemcpyDeviceToHost),
             "reading the write status");
  uint64_t saturated = 0, nonfinite = 0;
  int bad_layer = -1;
  for (size_t l = 0; l < n; ++l) {
    saturated += st[l].saturated;
    nonfinite += st[l].nonfinite;
    if (bad_layer < 0 && st[l].first_bad != WriteStatus{}.first_bad) bad_layer = static_cast<int>(l);
  }
  if (saturated == 0 && nonfinite == 0 && bad_layer < 0) return;  // the usual case: one read
  const std::vector<WriteStatus> clean(n);
  check_cuda(cudaMemcpy(impl.status, clean.data(), n * sizeof(WriteStatus), cudaMemcpyHostToDevice),
             "resetting the write status");
  tq::detail::count_saturated(saturated);
  tq::detail::count_nonfinite(nonfinite);
  if (bad_layer < 0) return;
  const BadValue b = BadValue::from_key(st[bad_layer].first_bad);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float x = b.kind == 0 ? std::numeric_limits<float>::quiet_NaN() : b.kind == 1 ? kInf : -kInf;
  throw Error(nonfinite_kv_message(where, bad_layer, b.head, "token " + std::to_string(b.token) + " of the write",
                                   b.side == 1, b.coord, x) +
              "; refused vectors were not written");
}

}  // namespace tq::cuda::detail
