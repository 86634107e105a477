// Argument checks of the CUDA host API. These run without a GPU: the configuration is
// validated before any device is touched.
#include <gtest/gtest.h>

#include <string>

#include "cuda_test_util.h"

namespace tq::cuda {
namespace {

KvCacheConfig config(const std::string& k, const std::string& v, int dim = 128, int block_tokens = 32) {
  return testing::cache_config(k, v, dim, 2, block_tokens, 64);
}

void expect_error_mentions(const KvCacheConfig& c, const std::string& what) {
  try {
    DeviceKvCache cache(c);
    FAIL() << "expected a tq::Error mentioning '" << what << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(CudaApi, SupportedCodecsCoverTheMseGroupAndGgmlRows) {
  for (const char* name : {"f16", "q8_0", "q4_0", "q4_0h", "turbo3", "turbo3c", "turbo2.5", "rht3", "rotor3",
                           "iso3", "iso3f", "planar3", "sq4", "v3g32", "v3g32h", "fp8"})
    EXPECT_TRUE(codec_supported(name)) << name;
  EXPECT_FALSE(codec_supported("turbo3p"));  // QJL keys are not implemented on CUDA yet
  EXPECT_FALSE(codec_supported("no-such-codec"));
  EXPECT_TRUE(head_dim_supported(128));
  EXPECT_FALSE(head_dim_supported(96));
}

TEST(CudaApi, RejectsWhatTheKernelsCannotRunWithANamedReason) {
  expect_error_mentions(config("turbo3p", "turbo3"), "turbo3p");
  expect_error_mentions(config("turbo3", "nonsense"), "unknown codec 'nonsense'");
  expect_error_mentions(config("turbo3", "turbo3", 96), "head size 96");
  expect_error_mentions(config("turbo3", "turbo3", 128, 12), "block_tokens");
}

}  // namespace
}  // namespace tq::cuda
