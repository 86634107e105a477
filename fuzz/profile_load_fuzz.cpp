// libFuzzer target for the calibration-profile loader. Input byte 0 picks the mode:
//   even: the bytes are a whole file (exercises the header checks);
//   odd:  the rest is a payload, wrapped in a valid "TQPF" header with its checksum, so
//         the fuzzer reaches the shape, RoPE and statistics parsing behind the checksum.
// A profile that parses must pass check(), and a small one (head_dim <= 64, at most 4
// layer-heads) is built into tq3 codecs: the statistics are then arbitrary finite numbers
// (not moments of any data), which the eigensolvers, the layout tables and the allocation
// must survive. Any tq::Error is an accepted outcome; another exception, a crash, a
// sanitizer report, a leak or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_frame.h"
#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/kv_profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::vector<uint8_t> file = tq::fuzz::file_from_input("TQPF", 1, data, size);
  tq::KvProfile profile;
  try {
    profile = tq::deserialize_profile(file);
  } catch (const tq::Error&) {
    return 0;
  }
  profile.check();  // deserialize_profile promised a consistent profile: an Error here is a bug
  if (profile.head_dim > 64 || profile.n_layers * profile.n_kv_heads > 4) return 0;
  tq::CalibrationOptions options;
  options.context = 64;  // RoPE averaged in closed form: the context length costs nothing
  try {
    const tq::CalibratedCodecs codecs = tq::build_calibrated(profile, *tq::find_preset("tq3"), options);
    (void)codecs.bits_per_value();
  } catch (const tq::Error&) {
  }
  return 0;
}
