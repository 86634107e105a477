// libFuzzer target for the cache-file loader. Input byte 0 picks the mode:
//   even: the bytes are a whole file (exercises the header checks);
//   odd:  the rest is a payload, wrapped in a valid header with its checksum, so the
//         fuzzer reaches the configuration and sequence parsing behind the checksum.
// Any tq::Error is an accepted outcome; a crash, a sanitizer report, a leak or an
// allocation beyond the limits is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "turboquant/cache_io.h"
#include "turboquant/error.h"

namespace {

uint64_t fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

void put64(std::vector<uint8_t>& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<uint8_t> file;
  if (data[0] & 1) {
    const uint8_t* payload = data + 1;
    const size_t n = size - 1;
    file = {'T', 'Q', 'K', 'V', 1, 0, 0, 0};
    put64(file, n);
    put64(file, fnv1a64(payload, n));
    put64(file, 0);
    file.insert(file.end(), payload, payload + n);
  } else {
    file.assign(data + 1, data + size);
  }
  tq::CacheLoadLimits limits;  // small, so each input runs in milliseconds
  limits.max_pool_bytes = size_t(1) << 24;
  limits.max_layer_heads = 8;
  limits.max_head_dim = 128;
  try {
    tq::KvCache cache = tq::deserialize_cache(file, limits);
    (void)cache.bytes_used();
  } catch (const tq::Error&) {
  }
  return 0;
}
