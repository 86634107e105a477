// Decode attention on the GPU against the CPU reference (Codec::prepare_query / dot /
// accumulate / finish with a float64 softmax) over a cache written by the CPU encoder
// and uploaded: ragged batches through shuffled block tables, GQA 4:1, every supported
// codec, head_dim 64/128/256. Relative error ‖gpu − ref‖ / ‖ref‖ < 1e-3.
#include <gtest/gtest.h>

#include <cstdio>

#include "cuda_attention_ref.h"

namespace tq::cuda {
namespace {

using testing::attention_error;
using testing::DeviceBuffer;
using testing::Shape;

const Shape kRagged{2, 4, 16, {1, 17, 200, 333}, 0};

class CudaAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaAttention, MatchesTheCpuReferenceOnRaggedGqaBatches) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 50;
  for (int dim : testing::kHeadDims) {
    const double err = attention_error(GetParam(), GetParam(), dim, kRagged, ++seed);
    std::printf("  %s d=%d: relative error %.2e\n", GetParam().c_str(), dim, err);
    EXPECT_LT(err, 1e-3) << GetParam() << " d=" << dim;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, CudaAttention, ::testing::ValuesIn(testing::supported_codecs()),
                         testing::CodecTestName());

// DecodeParams::out_dtype: the merge kernel writes f16 / bf16 itself; the values are the
// float32 output's, rounded once (checked bit for bit inside attention_error).
TEST(CudaAttentionShapes, HalfPrecisionOutputsAreTheFloatOutputsRounded) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 700;
  for (const char* codec : {"turbo3", "f16", "q8_0"})
    for (int dim : testing::kHeadDims)
      for (DType dtype : {DType::f16, DType::bf16}) {
        Shape s = kRagged;
        s.out_dtype = dtype;
        const double err = attention_error(codec, codec, dim, s, ++seed);
        EXPECT_LT(err, 1e-3) << codec << " d=" << dim << (dtype == DType::f16 ? " f16" : " bf16") << " output";
      }
}

TEST(CudaAttentionShapes, MixedCodecsGroupSizesAndSplitCounts) {
  TQ_REQUIRE_GPU();
  const Shape shapes[] = {
      {1, 1, 32, {64, 1000}, 0},         // multi-head attention
      {2, 2, 16, {5, 300, 31}, 3},       // 2:1, a forced odd split count
      {1, 8, 8, {129, 2, 700}, 0},       // 8:1
      {2, 4, 32, {0, 100, 4100}, 0},     // an empty sequence and a long one
      {2, 4, 16, {1000}, 64},            // more splits than tiles in some
  };
  const std::pair<const char*, const char*> pairs[] = {
      {"turbo3", "v3g32"}, {"q8_0", "turbo2"}, {"rht4", "rotor3"}, {"turbo3.5", "iso3f"}, {"f16", "q4_0h"}};
  uint64_t seed = 900;
  for (const Shape& s : shapes)
    for (const auto& [k, v] : pairs)
      for (int dim : {64, 128}) {
        const double err = attention_error(k, v, dim, s, ++seed);
        EXPECT_LT(err, 1e-3) << k << "/" << v << " d=" << dim << " group " << s.group << " splits " << s.num_splits;
      }
}

// DecodeParams::query_stride: queries read in place from wider rows (a fused QKV
// product's output) by the prepare kernel of each split kernel's path and by the single
// launch.
TEST(CudaAttentionShapes, QueriesReadFromStridedRows) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 1100;
  for (const char* codec : {"turbo3", "f16", "q8_0", "v3g32"})
    for (int dim : testing::kHeadDims)
      for (DecodeLaunch launch : {DecodeLaunch::auto_, DecodeLaunch::single}) {
        // The single launch: tensor-core mse codecs at d = 64 / 128 (docs/CUDA.md).
        if (launch == DecodeLaunch::single && (dim == 256 || std::string(codec) != "turbo3")) continue;
        Shape s = kRagged;
        s.query_pad = 2 * dim + 8;
        s.launch = launch;
        const double err = attention_error(codec, codec, dim, s, ++seed);
        EXPECT_LT(err, 1e-3) << codec << " d=" << dim << (launch == DecodeLaunch::single ? " single" : "");
      }
}

// DecodeParams::queries_dtype f16 / bf16: read by the prepare kernel, by the split
// kernels that read their own queries (keys without a rotation: f16, q8_0, fp8; two
// elements per load) and by the single launch; with a padded stride too.
TEST(CudaAttentionShapes, HalfAndBfloat16Queries) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 1200;
  for (DType dtype : {DType::f16, DType::bf16})
    for (const char* codec : {"turbo3", "rht3", "f16", "q8_0", "fp8", "v3g32"})
      for (int dim : testing::kHeadDims)
        for (int pad : {0, 2 * dim + 8}) {
          Shape s = kRagged;
          s.queries_dtype = dtype;
          s.query_pad = pad;
          const double err = attention_error(codec, codec, dim, s, ++seed);
          EXPECT_LT(err, 1e-3) << codec << " d=" << dim << (dtype == DType::f16 ? " f16" : " bf16") << " pad " << pad;
        }
}

TEST(CudaAttentionShapes, QueryStrideBelowTheRowIsRefused) {
  TQ_REQUIRE_GPU();
  DeviceKvCache cache(testing::cache_config("turbo3", "turbo3", 128, 2, 16, 64));
  DeviceBuffer<float> q(2 * 4 * 128), out(2 * 4 * 128);
  DeviceBuffer<int32_t> tables(std::vector<int32_t>{0, 1}), lens(std::vector<int32_t>{3, 5});
  DecodeParams p = testing::decode_params(q.get(), 2, 4, tables.get(), 1, lens.get(), 5, out.get());
  p.query_stride = 4 * 128 - 1;
  try {
    testing::run_decode(cache, p, out);
    FAIL() << "a query_stride below n_q_heads * head_dim ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("query_stride 511"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tq::cuda
