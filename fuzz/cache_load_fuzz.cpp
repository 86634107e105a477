// libFuzzer target for the cache-file loader. Input byte 0 picks the mode:
//   even: the bytes are a whole file (exercises the header checks);
//   odd:  the rest is a payload, wrapped in a valid header with its checksum, so the
//         fuzzer reaches the configuration and sequence parsing behind the checksum;
//         bit 1 picks the header's version (set: 1, the old layout; clear: the current).
// Any tq::Error is an accepted outcome; a crash, a sanitizer report, a leak or an
// allocation beyond the limits is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_frame.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::vector<uint8_t> file =
      tq::fuzz::file_from_input("TQKV", data[0] & 2 ? 1 : tq::kCacheFileVersion, data, size);
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
