#include <gtest/gtest.h>

#include <vector>

#include "turboquant/packing.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

TEST(Packing, RoundTripAndMatchesBitStreamDefinition) {
  Rng rng(21);
  for (int bits = 1; bits <= 8; ++bits)
    for (size_t count : {1u, 7u, 8u, 9u, 63u, 64u, 128u, 255u, 256u}) {
      std::vector<uint8_t> codes(count), back(count);
      for (auto& c : codes) c = static_cast<uint8_t>(rng.below(1u << bits));
      std::vector<uint8_t> packed(packed_bytes(count, bits) + 1, 0xAB);  // guard byte
      pack_bits(codes.data(), count, bits, packed.data());
      EXPECT_EQ(packed.back(), 0xAB) << "wrote past the end, bits " << bits;
      unpack_bits(packed.data(), count, bits, back.data());
      ASSERT_EQ(back, codes) << "bits " << bits << " count " << count;
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(read_code(packed.data(), i, bits), codes[i]);
    }
}

TEST(Packing, KnownLayouts) {
  const uint8_t codes3[8] = {1, 2, 3, 4, 5, 6, 7, 0};
  uint8_t p3[3];
  pack_bits(codes3, 8, 3, p3);
  // bits: 001 010 011 100 101 110 111 000, LSB first
  const uint32_t w = 1 | (2 << 3) | (3 << 6) | (4 << 9) | (5 << 12) | (6 << 15) | (7 << 18);
  EXPECT_EQ(p3[0], w & 0xff);
  EXPECT_EQ(p3[1], (w >> 8) & 0xff);
  EXPECT_EQ(p3[2], (w >> 16) & 0xff);
  const uint8_t codes4[2] = {0x3, 0xC};
  uint8_t p4;
  pack_bits(codes4, 2, 4, &p4);
  EXPECT_EQ(p4, 0xC3);
  const uint8_t codes1[8] = {1, 0, 0, 0, 0, 0, 0, 1};
  uint8_t p1;
  pack_bits(codes1, 8, 1, &p1);
  EXPECT_EQ(p1, 0x81);
  EXPECT_EQ(packed_bytes(128, 3), 48u);
}

TEST(Packing, HighBitsAreMasked) {
  const uint8_t codes[4] = {0xFF, 0xFE, 0x04, 0x0B};
  uint8_t p[1];
  pack_bits(codes, 4, 2, p);
  uint8_t back[4];
  unpack_bits(p, 4, 2, back);
  EXPECT_EQ(back[0], 3);
  EXPECT_EQ(back[1], 2);
  EXPECT_EQ(back[2], 0);
  EXPECT_EQ(back[3], 3);
}

}  // namespace
}  // namespace tq
