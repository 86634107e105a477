// Quantize-on-write without intrinsics: the lane encoder of encode_lanes.h over GCC's
// generic 8-lane vectors (the compiler lowers them to whatever the target has), with the
// fp16 and rounding steps done per lane by the reference's own functions.
#include "encode.h"

#if defined(__GNUC__)
// Without AVX, GCC notes that 32-byte vector arguments change the ABI; these functions
// never cross this file (internal linkage), so the note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
#include <cmath>
#include <cstring>

#include "encode_lanes.h"

namespace tq::detail {

namespace {

struct Portable : lanes::Types<8> {
  static void widen(F x, DH* d) {
    for (int b = 0; b < W; ++b) d[b / 4][b % 4] = x[b];
  }
  static F nearbyint(F x) {
    for (int b = 0; b < W; ++b) x[b] = std::nearbyint(x[b]);
    return x;
  }
  static I half_bits(F x) {
    I h{};
    for (int b = 0; b < W; ++b) h[b] = float_to_half(x[b]);
    return h;
  }
  static F round_to_half(F x) {
    for (int b = 0; b < W; ++b) x[b] = tq::round_to_half(x[b]);
    return x;
  }
  static void transpose(const float* const* rows, int j, F* t) {
    for (int k = 0; k < W; ++k)
      for (int r = 0; r < W; ++r) t[k][r] = rows[r][j + k];  // lane by lane (clang takes no lane address)
  }
};

}  // namespace

std::unique_ptr<RecordEncoder> make_portable_record_encoder(const Codec& codec) {
  return lanes::make<Portable>(codec);
}

}  // namespace tq::detail

#else

namespace tq::detail {
std::unique_ptr<RecordEncoder> make_portable_record_encoder(const Codec&) { return nullptr; }
}  // namespace tq::detail

#endif
