// Encoder dispatch (same levels as the attention kernels) and the fallback that runs the
// reference Codec::encode where the lane encoder does not apply (head dimensions that are
// not a multiple of 32).
#include "encode.h"

namespace tq::detail {

namespace {

class ReferenceEncoder final : public RecordEncoder {
 public:
  explicit ReferenceEncoder(const Codec& c) : codec_(c) {}
  void encode(const float* x, size_t x_stride, int n, uint8_t* out, size_t out_stride) const override {
    for (int t = 0; t < n; ++t) codec_.encode(x + x_stride * t, out + out_stride * t);
  }

 private:
  Codec codec_;
};

}  // namespace

std::unique_ptr<RecordEncoder> make_record_encoder(const Codec& codec, AttendPath path) {
  if (path == AttendPath::best || path == AttendPath::avx512)
    if (auto e = make_avx512_record_encoder(codec)) return e;
  if (path != AttendPath::portable)
    if (auto e = make_avx2_record_encoder(codec)) return e;
  if (auto e = make_portable_record_encoder(codec)) return e;
  return std::make_unique<ReferenceEncoder>(codec);
}

}  // namespace tq::detail
