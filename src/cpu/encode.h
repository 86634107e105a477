#pragma once
// Fast quantize-on-write: Codec::encode over a run of vectors, writing the same bytes as
// the reference (docs/FORMATS.md). KvCache::append uses it for the tokens of one KV head
// inside one cache block, whose records are contiguous.
//
// The SIMD encoders (encode_lanes.h) put one vector in each SIMD lane, W vectors at a
// time, so every per-vector sum (rotation rows, norm, corrected norm) runs in each lane in
// the reference's order and the records come out byte-identical. tests/cpu/test_encode.cpp
// checks that for every codec, and states the near-tie tolerance that covers a compiler
// contracting the reference's float expressions differently.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "turboquant/attention.h"
#include "turboquant/codec.h"

namespace tq::detail {

class RecordEncoder {
 public:
  virtual ~RecordEncoder() = default;
  // Vector t (head_dim floats, all finite: the caller checks) is x + t * x_stride; its
  // record goes to out + t * out_stride.
  virtual void encode(const float* x, size_t x_stride, int n, uint8_t* out, size_t out_stride) const = 0;
};

// The widest encoder at or below `path` (the same levels as attend()) that this build and
// this codec have. Every codec has lane encoders when head_dim (and the code dimension) is
// a multiple of 32; other dimensions get an encoder that calls Codec::encode per vector.
std::unique_ptr<RecordEncoder> make_record_encoder(const Codec& codec, AttendPath path = AttendPath::best);

// One level each; nullptr when this build or this codec's layout has none.
std::unique_ptr<RecordEncoder> make_avx512_record_encoder(const Codec& codec);
std::unique_ptr<RecordEncoder> make_avx2_record_encoder(const Codec& codec);
std::unique_ptr<RecordEncoder> make_portable_record_encoder(const Codec& codec);

}  // namespace tq::detail
