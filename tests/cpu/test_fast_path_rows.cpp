// The CPU fast-path flags of each quantizer-kind row (quant_traits.h) match what the
// factories build, so a row never claims a path that does not exist or hides one that does.
#include <gtest/gtest.h>

#include <string>

#include "encode.h"
#include "kernels.h"
#include "turboquant/codec.h"
#include "turboquant/quant_traits.h"

namespace tq {
namespace {

TEST(FastPathRows, SimdScorerFlagMatchesTheKernels) {
  if (!detail::avx2_compiled()) GTEST_SKIP() << "no AVX2 kernels in this build";
  for (const CodecSpec& spec : codec_table()) {
    const Codec c = Codec::make(spec, 128, 1);
    const bool flag = quant_traits(spec.quant).cpu_simd_scorer;
    EXPECT_EQ(detail::make_avx2_key_scorer(c) != nullptr, flag) << spec.name;
    EXPECT_EQ(detail::make_avx2_value_accumulator(c) != nullptr, flag) << spec.name;
  }
}

TEST(FastPathRows, LaneEncoderFlagMatchesTheEncoders) {
  for (const CodecSpec& spec : codec_table()) {
    const Codec c = Codec::make(spec, 128, 1);
    const QuantTraits& row = quant_traits(spec.quant);
    const bool in_width = row.cpu_lane_max_bits == 0 || spec.bits <= row.cpu_lane_max_bits;
    EXPECT_EQ(detail::make_portable_record_encoder(c) != nullptr, row.cpu_lane_encoder && in_width) << spec.name;
  }
}

}  // namespace
}  // namespace tq
