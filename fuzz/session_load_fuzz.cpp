// libFuzzer target for the session-file loader (`tq run --load-session`). Input byte 0
// picks the mode as in fuzz_frame.h: a whole file, or a payload behind a valid "TQSN"
// header and checksum. The session parser has fields of its own before the embedded
// cache file (codec names, the Q/K balance, tokens, logits); a session that parses is
// then checked against its own balance and restored the way `tq run` restores it: its
// cache file into an empty cache of the saved configuration (deserialize_sequences and
// the length checks, which cache_load_fuzz does not reach). Any tq::Error is an accepted
// outcome; a crash, a sanitizer report, a leak or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_frame.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"
#include "turboquant/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::vector<uint8_t> file = tq::fuzz::file_from_input("TQSN", tq::kSessionFileVersion, data, size);
  tq::CacheLoadLimits limits;  // as cache_load_fuzz: small, so each input runs in milliseconds
  limits.max_pool_bytes = size_t(1) << 24;
  limits.max_layer_heads = 8;
  limits.max_head_dim = 128;
  try {
    const tq::Session s = tq::deserialize_session(file);
    tq::check_session_balance(s, s.balance);  // reads every saved scale
    tq::check_session_matches(s, s.model, s.k_codec, s.v_codec, !s.balance.empty());
    const tq::KvCache saved = tq::deserialize_cache(s.cache, limits);
    tq::KvCache cache(saved.config());
    const int seq = tq::restore_session_cache(s, cache);
    (void)cache.length(0, seq);
  } catch (const tq::Error&) {
  }
  return 0;
}
