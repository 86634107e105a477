// The CUDA kernel choice as an option (QuantizeParams::kernel, DecodeParams::kernel): an
// explicit kernel that cannot run a codec is a tq::Error naming kernel and codec, never a
// switch to another kernel. Which kernel computes what correctly is the backend harness's
// job (tests/backend); here only the refusals.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "cuda_attention_ref.h"
#include "env_override.h"
#include "quantize_args.h"

namespace tq::cuda {
namespace {

using testing::DeviceBuffer;

void expect_mentions(const std::string& text, const std::string& what) {
  EXPECT_NE(text.find(what), std::string::npos) << text;
}

TEST(CudaKernelChoice, NamesTheKernelsAndTheirLimits) {
  TQ_REQUIRE_GPU();
  DeviceKvCache mixed(testing::cache_config("rht3", "v3g32", 128, 2, 16, 64));
  EXPECT_EQ(decode_kernel_unsupported(mixed, 0, DecodeKernel::auto_), "");
  EXPECT_EQ(decode_kernel_unsupported(mixed, 0, DecodeKernel::simt), "");
  const std::string why = decode_kernel_unsupported(mixed, 0, DecodeKernel::mma);
  expect_mentions(why, "mma");
  expect_mentions(why, "V v3g32");
  EXPECT_EQ(quantize_kernel_unsupported(mixed, 0, 0, QuantizeKernel::warp), "");
  expect_mentions(quantize_kernel_unsupported(mixed, 0, 1, QuantizeKernel::warp), "V codec v3g32");
  EXPECT_EQ(quantize_kernel_unsupported(mixed, 0, 1, QuantizeKernel::tiled), "");
  DeviceKvCache uniform(testing::cache_config("turbo3", "turbo3", 128, 2, 16, 64));
  EXPECT_EQ(decode_kernel_unsupported(uniform, 0, DecodeKernel::mma), "");
  EXPECT_EQ(quantize_kernel_unsupported(uniform, 0, 0, QuantizeKernel::warp), "");  // dense: one token per warp
  DeviceKvCache wide(testing::cache_config("turbo3", "turbo3", 256, 1, 16, 64));
  expect_mentions(quantize_kernel_unsupported(wide, 0, 0, QuantizeKernel::warp), "K codec turbo3 at head size 256");
  DeviceKvCache fp8(testing::cache_config("fp8", "f16", 128, 2, 16, 64));
  expect_mentions(quantize_kernel_unsupported(fp8, 0, 0, QuantizeKernel::tiled), "does not take K codec fp8");
  EXPECT_EQ(quantize_kernel_unsupported(fp8, 0, 0, QuantizeKernel::warp), "");
  // f16 / q8_0 / q4_0 records of one kind on both sides take the tile tensor-core kernel
  // (sinks too); a pair of two kinds only the CUDA-core one.
  for (const char* codec : {"f16", "q8_0", "q4_0h"}) {
    KvCacheConfig cfg = testing::cache_config(codec, codec, 128, 2, 16, 64);
    cfg.sink_tokens = 2;
    DeviceKvCache plain(cfg);
    EXPECT_TRUE(plain.plan().layer(0).cuda_decode.mma_plain) << codec;
    EXPECT_EQ(decode_kernel_unsupported(plain, 0, DecodeKernel::mma), "") << codec;
    EXPECT_EQ(decode_kernel_unsupported(plain, 0, DecodeKernel::simt), "") << codec;
  }
  // fp8 pairs too (fp8 keeps no sinks).
  DeviceKvCache fp8_pair(testing::cache_config("fp8", "fp8", 128, 2, 16, 64));
  EXPECT_TRUE(fp8_pair.plan().layer(0).cuda_decode.mma_plain);
  EXPECT_EQ(decode_kernel_unsupported(fp8_pair, 0, DecodeKernel::mma), "");
  EXPECT_EQ(decode_kernel_unsupported(fp8_pair, 0, DecodeKernel::simt), "");
  DeviceKvCache two_kinds(testing::cache_config("q8_0", "f16", 128, 2, 16, 64));
  EXPECT_FALSE(two_kinds.plan().layer(0).cuda_decode.tensor_core());
  expect_mentions(decode_kernel_unsupported(two_kinds, 0, DecodeKernel::mma), "K q8_0 / V f16");
  EXPECT_STREQ(kernel_name(DecodeKernel::mma), "mma");
  EXPECT_STREQ(kernel_name(QuantizeKernel::tiled), "tiled");
}

TEST(CudaKernelChoice, AnExplicitKernelThatCannotRunThrows) {
  TQ_REQUIRE_GPU();
  DeviceKvCache cache(testing::cache_config("rht3", "v3g32", 64, 2, 16, 64));
  DeviceBuffer<float> k(2 * 64), v(2 * 64), q(8 * 64), out(8 * 64);
  DeviceBuffer<int32_t> slots(std::vector<int32_t>{0}), table(std::vector<int32_t>{0}), lens(std::vector<int32_t>{1});
  QuantizeParams w;
  w.keys = k.get();
  w.values = v.get();
  w.n_tokens = 1;
  w.slots = slots.get();
  w.kernel = QuantizeKernel::warp;
  try {
    quantize_on_write(cache, w);
    FAIL() << "the warp kernel wrote a group codec";
  } catch (const Error& e) {
    expect_mentions(e.what(), "warp quantize kernel does not take V codec v3g32");
  }
  DecodeParams d = testing::decode_params(q.get(), 1, 8, table.get(), 1, lens.get(), 1, out.get());
  d.kernel = DecodeKernel::mma;
  try {
    decode_workspace_bytes(cache, d);
    FAIL() << "the tensor-core kernel took a group codec";
  } catch (const Error& e) {
    expect_mentions(e.what(), "decode_attention: the tensor-core decode kernel (mma) does not take K rht3 / V v3g32");
  }
}

// f16 at d = 128 with one query head per KV head: the CUDA-core kernel's ring would need
// more shared memory than a block may have. Forcing it is a tq::Error naming the kernel and
// the pair (it had failed at launch as "invalid argument"); auto_ takes the tile kernel.
TEST(CudaKernelChoice, TheCudaCoreKernelRefusesWhatItsRingCannotHold) {
  TQ_REQUIRE_GPU();
  DeviceKvCache cache(testing::cache_config("f16", "f16", 128, 2, 32, 64));
  DeviceBuffer<float> q(2 * 128), out(2 * 128);
  DeviceBuffer<int32_t> table(std::vector<int32_t>{0}), lens(std::vector<int32_t>{1});
  DecodeParams d = testing::decode_params(q.get(), 1, 2, table.get(), 1, lens.get(), 1, out.get());
  d.kernel = DecodeKernel::simt;
  try {
    decode_workspace_bytes(cache, d);
    FAIL() << "the CUDA-core kernel took f16 at d = 128, GQA 1";
  } catch (const Error& e) {
    expect_mentions(e.what(), "the CUDA-core decode kernel (simt) needs");
    expect_mentions(e.what(), "K f16 / V f16 at head_dim 128 with 1 query head(s)");
  }
  d.kernel = DecodeKernel::auto_;
  EXPECT_GT(decode_workspace_bytes(cache, d), 0u);
}

// The experiment overrides' parser (TQ_CUDA_DECODE, TQ_CUDA_LAUNCH, TQ_CUDA_QUANTIZE), on
// a variable of its own (host code, no GPU): unset or empty is auto_, a named choice is
// that choice, anything else an error naming the variable and the choices.
TEST(CudaEnvOverride, UnsetIsAutoAChoiceIsItselfAnythingElseIsAnError) {
  const char* var = "TQ_TEST_QUANTIZE_OVERRIDE";
  auto read = [&] {
    return detail::env_override<QuantizeKernel>(var, "quantize-on-write", "QuantizeParams::kernel",
                                                {{"tiled", QuantizeKernel::tiled}, {"warp", QuantizeKernel::warp}});
  };
  ::unsetenv(var);
  EXPECT_EQ(read(), QuantizeKernel::auto_);
  ::setenv(var, "", 1);
  EXPECT_EQ(read(), QuantizeKernel::auto_);
  ::setenv(var, "warp", 1);
  EXPECT_EQ(read(), QuantizeKernel::warp);
  ::setenv(var, "wrap", 1);
  try {
    read();
    FAIL() << "an unknown value was accepted";
  } catch (const Error& e) {
    expect_mentions(e.what(), "TQ_TEST_QUANTIZE_OVERRIDE=wrap");
    expect_mentions(e.what(), "tiled, warp");
  }
  ::unsetenv(var);
}

// The quantize launches' small-write rule (host code, no GPU): a write takes the
// small-write shapes exactly when its CTAs, per KV head and side, number fewer than the
// SMs; and which rotation kinds a launch of one or both sides holds.
TEST(QuantizeLaunchShape, SmallWritesAreThoseWithFewerCtasThanSms) {
  // 64 tokens per CTA, 8 heads, 2 sides: 16 CTAs per 64 tokens, 132 SMs.
  EXPECT_TRUE(detail::ctas_leave_sms_idle(1, 64, 8, 2, 132));
  EXPECT_TRUE(detail::ctas_leave_sms_idle(8 * 64, 64, 8, 2, 132));   // 128 CTAs
  EXPECT_FALSE(detail::ctas_leave_sms_idle(8 * 64 + 1, 64, 8, 2, 132));  // 144: a ragged ninth chunk counts
  EXPECT_FALSE(detail::ctas_leave_sms_idle(int64_t{1} << 40, 64, 8, 1, 132)) << "no overflow";
  detail::QuantizeArgs a{};
  a.rot_kind[0] = RotationKind::rht;
  a.rot_kind[1] = RotationKind::dense;
  EXPECT_TRUE(detail::launch_has_dense(a, 2));
  EXPECT_FALSE(detail::launch_has_dense(a, 1)) << "keys only";
  a.first_side = 1;
  EXPECT_TRUE(detail::launch_has_dense(a, 1)) << "values only";
  EXPECT_FALSE(detail::launch_any_rotation(a, 1, [](RotationKind k) { return k == RotationKind::rht; }));
}

}  // namespace
}  // namespace tq::cuda
