// The quantizer-kind table agrees with the codecs it describes: names, fixed block sizes
// against record_bytes(), factories exactly for the kinds built by name.
#include <gtest/gtest.h>

#include <string>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/quant_traits.h"

namespace tq {
namespace {

TEST(QuantTraits, EveryCodecRowAgreesWithItsKind) {
  for (const CodecSpec& spec : codec_table()) {
    SCOPED_TRACE(std::string(spec.name));
    const QuantTraits& row = quant_traits(spec.quant);
    EXPECT_EQ(row.kind, spec.quant);
    EXPECT_EQ(row.name, quant_name(spec.quant));
    EXPECT_FALSE(row.calibrated);
    ASSERT_NE(row.make, nullptr);
    const Codec c = Codec::make(spec, 128, 1);
    if (row.block_coords > 0) {
      EXPECT_EQ(c.record_bytes(), c.code_dim() / row.block_coords * row.block_bytes);
    }
  }
}

TEST(QuantTraits, PresetsAreCalibratedRowsWithoutFactory) {
  for (const CodecSpec& preset : preset_table()) {
    const QuantTraits& row = quant_traits(preset.quant);
    EXPECT_TRUE(row.calibrated) << preset.name;
    EXPECT_EQ(row.make, nullptr) << preset.name;
    EXPECT_THROW(Codec::make(preset, 128), Error) << preset.name;
  }
}

// A tensor-core decode kernel is one of the kind's CUDA kernels: f16, q8_0, q4_0, fp8, the
// uniform mse codes and the calibrated records have one; prod (no CUDA kernels) and group
// decode on the CUDA-core kernel only.
TEST(QuantTraits, TensorCoreDecodeRowsHaveCudaKernels) {
  for (QuantKind k : {QuantKind::f16, QuantKind::q8_0, QuantKind::q4_0, QuantKind::mse, QuantKind::prod,
                      QuantKind::group, QuantKind::grouped, QuantKind::fp8}) {
    const QuantTraits& row = quant_traits(k);
    if (row.cuda_mma) {
      EXPECT_TRUE(row.cuda_kernels) << row.name;
    }
    const bool expected = k != QuantKind::prod && k != QuantKind::group;
    EXPECT_EQ(row.cuda_mma, expected) << row.name;
  }
}

}  // namespace
}  // namespace tq
