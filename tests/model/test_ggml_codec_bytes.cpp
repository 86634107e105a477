// The GGUF writer's q8_0/q4_0 (gguf::quantize) and the cache codecs q8_0/q4_0
// (Codec::encode) are one implementation (src/core/quantizer_ggml.cpp): the same bytes
// for the same blocks, including all-zero blocks, ties at ±0.5 steps and scales near
// fp16's smallest normal.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/gguf.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

std::vector<float> blocks_to_quantize(int n_blocks) {
  Rng rng(11);
  std::vector<float> x(static_cast<size_t>(n_blocks) * 32);
  for (int b = 0; b < n_blocks; ++b) {
    const double scale = std::pow(10.0, 6.0 * rng.uniform() - 4.0);
    for (int j = 0; j < 32; ++j) {
      float& v = x[static_cast<size_t>(b) * 32 + j];
      switch (b % 4) {
        case 0: v = static_cast<float>(scale * rng.gaussian()); break;
        case 1: v = static_cast<float>(j % 5) - 2.f; break;  // exact ties
        case 2: v = b % 8 == 2 ? 0.f : static_cast<float>(1e-6 * rng.gaussian()); break;
        default: v = static_cast<float>(scale * (j == 7 ? 40.0 : 1.0) * rng.gaussian()); break;
      }
    }
  }
  return x;
}

void expect_same_bytes(const char* codec, gguf::GgmlType type) {
  constexpr int kBlocks = 64;
  const std::vector<float> x = blocks_to_quantize(kBlocks);
  const std::vector<uint8_t> gguf_bytes = gguf::quantize(type, x.data(), x.size());
  const Codec c = Codec::make(codec, 32);  // one block per record, no rotation
  std::vector<uint8_t> rec(c.record_bytes());
  ASSERT_EQ(gguf_bytes.size(), rec.size() * kBlocks);
  for (int b = 0; b < kBlocks; ++b) {
    c.encode(x.data() + 32 * b, rec.data());
    for (size_t i = 0; i < rec.size(); ++i)
      ASSERT_EQ(gguf_bytes[b * rec.size() + i], rec[i]) << codec << " block " << b << " byte " << i;
  }
}

TEST(GgmlCodecBytes, Q8_0) { expect_same_bytes("q8_0", gguf::GgmlType::Q8_0); }
TEST(GgmlCodecBytes, Q4_0) { expect_same_bytes("q4_0", gguf::GgmlType::Q4_0); }

}  // namespace
}  // namespace tq
