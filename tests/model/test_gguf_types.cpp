// Dequantization of every supported ggml type on hand-made blocks. Each test packs chosen
// codes and scales the way the format describes (element → byte/bit position written out
// per element, not by the dequantizer's loop structure) and checks every output against
// the value computed from those chosen numbers. Scales are exact in fp16 so the expected
// values are exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/half.h"

namespace tq::gguf {
namespace {

void put_half(std::vector<uint8_t>& b, size_t at, float v) {
  ASSERT_EQ(round_to_half(v), v) << "test scale must be exact in fp16";
  store_half(b.data() + at, v);
}

std::vector<float> run(GgmlType t, const std::vector<uint8_t>& block, size_t n) {
  EXPECT_EQ(block.size() * type_block_elements(t), n * type_block_bytes(t));
  std::vector<float> out(n, -12345.0f);
  dequantize(t, block.data(), n, out.data());
  return out;
}

TEST(GgufTypes, TableSizes) {
  EXPECT_EQ(type_block_bytes(GgmlType::Q4_0), 18u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q4_1), 20u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q5_0), 22u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q5_1), 24u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q8_0), 34u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q2_K), 84u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q3_K), 110u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q4_K), 144u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q5_K), 176u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q6_K), 210u);
  EXPECT_EQ(type_block_bytes(GgmlType::Q8_K), 292u);
  EXPECT_EQ(type_block_elements(GgmlType::Q6_K), 256u);
  EXPECT_EQ(type_block_elements(GgmlType::BF16), 1u);
  EXPECT_EQ(type_name(GgmlType::Q4_K), "Q4_K");
  EXPECT_THROW(type_block_bytes(GgmlType::IQ2_XXS), Error);  // known, not supported
  EXPECT_THROW(type_block_bytes(static_cast<GgmlType>(4)), Error);  // removed Q4_2
  EXPECT_EQ(type_name(static_cast<GgmlType>(4)), "type#4");
  EXPECT_THROW(type_bytes(GgmlType::Q4_0, 33), Error);
}

TEST(GgufTypes, PlainFloats) {
  const std::vector<float> f = {1.5f, -2.25f, 65504.0f, 0.0f};
  std::vector<uint8_t> raw(16);
  std::memcpy(raw.data(), f.data(), 16);
  EXPECT_EQ(run(GgmlType::F32, raw, 4), f);

  // fp16: 0x3c00 = 1, 0xc000 = -2, 0x7bff = 65504, 0x0001 = 2^-24.
  const std::vector<uint8_t> h = {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00};
  EXPECT_EQ(run(GgmlType::F16, h, 4), (std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)}));

  // bf16: the top 16 bits of an f32. 0x3fc0 = 1.5, 0xc110 = -9, 0x4049 = 3.140625.
  const std::vector<uint8_t> b = {0xc0, 0x3f, 0x10, 0xc1, 0x49, 0x40};
  EXPECT_EQ(run(GgmlType::BF16, b, 3), (std::vector<float>{1.5f, -9.0f, 3.140625f}));
}

TEST(GgufTypes, Q8_0) {
  std::vector<uint8_t> b(34);
  put_half(b, 0, 0.125f);
  for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128));
  const auto out = run(GgmlType::Q8_0, b, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[j], 0.125f * static_cast<float>(j * 8 - 128)) << j;
}

TEST(GgufTypes, Q4_0AndQ4_1) {
  // Element j < 16 lives in the low nibble of byte j, element j ≥ 16 in the high nibble of byte j − 16.
  int q[32];
  for (int j = 0; j < 32; ++j) q[j] = (j * 7 + 3) % 16;
  std::vector<uint8_t> b0(18, 0), b1(20, 0);
  put_half(b0, 0, 0.5f);
  put_half(b1, 0, 0.25f);
  put_half(b1, 2, -3.0f);
  for (int j = 0; j < 32; ++j) {
    const int byte = j % 16, shift = j < 16 ? 0 : 4;
    b0[2 + byte] |= static_cast<uint8_t>(q[j] << shift);
    b1[4 + byte] |= static_cast<uint8_t>(q[j] << shift);
  }
  const auto o0 = run(GgmlType::Q4_0, b0, 32);
  const auto o1 = run(GgmlType::Q4_1, b1, 32);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(o0[j], 0.5f * static_cast<float>(q[j] - 8)) << j;
    EXPECT_EQ(o1[j], 0.25f * static_cast<float>(q[j]) - 3.0f) << j;
  }
}

TEST(GgufTypes, Q5_0AndQ5_1) {
  // Low 4 bits as Q4_0; bit 4 of element j is bit j of the u32 qh (little-endian).
  int q[32];
  for (int j = 0; j < 32; ++j) q[j] = (j * 11 + 5) % 32;
  std::vector<uint8_t> b0(22, 0), b1(24, 0);
  put_half(b0, 0, 2.0f);
  put_half(b1, 0, 0.375f);
  put_half(b1, 2, 1.0f);
  for (int j = 0; j < 32; ++j) {
    const int byte = j % 16, shift = j < 16 ? 0 : 4;
    b0[6 + byte] |= static_cast<uint8_t>((q[j] & 15) << shift);
    b1[8 + byte] |= static_cast<uint8_t>((q[j] & 15) << shift);
    if (q[j] & 16) {
      b0[2 + j / 8] |= static_cast<uint8_t>(1 << (j % 8));
      b1[4 + j / 8] |= static_cast<uint8_t>(1 << (j % 8));
    }
  }
  const auto o0 = run(GgmlType::Q5_0, b0, 32);
  const auto o1 = run(GgmlType::Q5_1, b1, 32);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(o0[j], 2.0f * static_cast<float>(q[j] - 16)) << j;
    EXPECT_EQ(o1[j], 0.375f * static_cast<float>(q[j]) + 1.0f) << j;
  }
}

// Q4_K / Q5_K scale packing as ggml's quantizer writes it: sub-blocks 0..3 in the low 6
// bits of bytes 0..3 (scale) and 4..7 (min); sub-blocks 4..7 split into a low nibble in
// bytes 8..11 (scale low, min high) and their top 2 bits in bits 6..7 of bytes 0..7.
void pack_k4_scales(const int sc[8], const int mn[8], uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
}

TEST(GgufTypes, Q4_K) {
  const int sc[8] = {1, 63, 17, 32, 45, 6, 60, 33};
  const int mn[8] = {0, 5, 63, 31, 48, 16, 1, 62};
  std::vector<uint8_t> b(144, 0);
  put_half(b, 0, 0.03125f);
  put_half(b, 2, 0.0625f);
  pack_k4_scales(sc, mn, b.data() + 4);
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = (e * 5 + e / 7) % 16;
    // Sub-block s = e / 32; the pair (2p, 2p+1) shares 32 bytes, even s in the low nibbles.
    const int s = e / 32, l = e % 32;
    b[16 + 32 * (s / 2) + l] |= static_cast<uint8_t>(q[e] << (s % 2 ? 4 : 0));
  }
  const auto out = run(GgmlType::Q4_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int s = e / 32;
    EXPECT_EQ(out[e], 0.03125f * static_cast<float>(sc[s] * q[e]) - 0.0625f * static_cast<float>(mn[s])) << e;
  }
}

TEST(GgufTypes, Q5_K) {
  const int sc[8] = {63, 2, 40, 9, 18, 55, 31, 7};
  const int mn[8] = {12, 63, 0, 44, 3, 29, 50, 17};
  std::vector<uint8_t> b(176, 0);
  put_half(b, 0, 0.015625f);
  put_half(b, 2, 0.125f);
  pack_k4_scales(sc, mn, b.data() + 4);
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = (e * 13 + 7) % 32;
    const int s = e / 32, l = e % 32;
    b[48 + 32 * (s / 2) + l] |= static_cast<uint8_t>((q[e] & 15) << (s % 2 ? 4 : 0));
    if (q[e] & 16) b[16 + l] |= static_cast<uint8_t>(1 << s);  // fifth bit: qh[l], bit s
  }
  const auto out = run(GgmlType::Q5_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int s = e / 32;
    EXPECT_EQ(out[e], 0.015625f * static_cast<float>(sc[s] * q[e]) - 0.125f * static_cast<float>(mn[s])) << e;
  }
}

TEST(GgufTypes, Q6_K) {
  std::vector<uint8_t> b(210, 0);
  int8_t scales[16];
  for (int i = 0; i < 16; ++i) scales[i] = static_cast<int8_t>(i * 17 - 128);
  std::memcpy(b.data() + 192, scales, 16);
  put_half(b, 208, 0.0078125f);
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = (e * 29 + 11) % 64;
    // Half h of 128; group g = which 32 of the half; low 4 bits in ql (g 0,1 low nibble of
    // bytes l and 32+l, g 2,3 the high nibbles), top 2 bits in qh[32h + l] at bits 2g.
    const int h = e / 128, g = (e % 128) / 32, l = e % 32;
    b[64 * h + 32 * (g % 2) + l] |= static_cast<uint8_t>((q[e] & 15) << (g >= 2 ? 4 : 0));
    b[128 + 32 * h + l] |= static_cast<uint8_t>((q[e] >> 4) << (2 * g));
  }
  const auto out = run(GgmlType::Q6_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    EXPECT_EQ(out[e], 0.0078125f * static_cast<float>(scales[e / 16] * (q[e] - 32))) << e;
  }
}

TEST(GgufTypes, Q3_K) {
  std::vector<uint8_t> b(110, 0);
  int s6[16];
  for (int i = 0; i < 16; ++i) {
    s6[i] = (i * 23 + 1) % 64;  // stored with an offset of 32: scale = s6 − 32
    // Low 4 bits: scales 0..7 in the low nibbles of bytes 0..7, 8..15 in the high nibbles;
    // top 2 bits: byte 8 + i % 4, bit pair i / 4.
    b[96 + i % 8] |= static_cast<uint8_t>((s6[i] & 15) << (i < 8 ? 0 : 4));
    b[96 + 8 + i % 4] |= static_cast<uint8_t>((s6[i] >> 4) << (2 * (i / 4)));
  }
  put_half(b, 108, 0.5f);
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = (e * 3 + e / 5) % 8;  // 3-bit code; value = code − 4
    // Low 2 bits: qs[32h + l] at bit pair j (j = which 32 of the half); high bit: hmask[l]
    // bit 4h + j, and the stored bit is set when the code is ≥ 4.
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    b[32 + 32 * h + l] |= static_cast<uint8_t>((q[e] & 3) << (2 * j));
    if (q[e] & 4) b[l] |= static_cast<uint8_t>(1 << (4 * h + j));
  }
  const auto out = run(GgmlType::Q3_K, b, 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(out[e], 0.5f * static_cast<float>((s6[e / 16] - 32) * (q[e] - 4))) << e;
}

TEST(GgufTypes, Q2_K) {
  std::vector<uint8_t> b(84, 0);
  int sc[16], mn[16];
  for (int i = 0; i < 16; ++i) {
    sc[i] = (i * 5 + 2) % 16;
    mn[i] = (i * 9 + 4) % 16;
    b[i] = static_cast<uint8_t>(sc[i] | (mn[i] << 4));
  }
  put_half(b, 80, 0.25f);
  put_half(b, 82, 0.125f);
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = (e * 7 + e / 3) % 4;
    const int h = e / 128, j = (e % 128) / 32, l = e % 32;
    b[16 + 32 * h + l] |= static_cast<uint8_t>(q[e] << (2 * j));
  }
  const auto out = run(GgmlType::Q2_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    EXPECT_EQ(out[e], 0.25f * static_cast<float>(sc[e / 16] * q[e]) - 0.125f * static_cast<float>(mn[e / 16])) << e;
  }
}

TEST(GgufTypes, Q8_K) {
  std::vector<uint8_t> b(292, 0);
  const float d = 0.0123f;  // f32 scale: any value
  std::memcpy(b.data(), &d, 4);
  for (int e = 0; e < 256; ++e) b[4 + e] = static_cast<uint8_t>(static_cast<int8_t>(e - 128));
  const auto out = run(GgmlType::Q8_K, b, 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(out[e], d * static_cast<float>(e - 128)) << e;
}

TEST(GgufTypes, MultipleBlocksAndRows) {
  // Two Q8_0 blocks per row, three rows: dequantize_row must pick the right bytes.
  std::vector<uint8_t> data(3 * 2 * 34, 0);
  for (int blk = 0; blk < 6; ++blk) {
    store_half(data.data() + 34 * blk, static_cast<float>(blk + 1));
    for (int j = 0; j < 32; ++j) data[34 * blk + 2 + j] = static_cast<uint8_t>(j);
  }
  TensorInfo t;
  t.name = "w";
  t.shape = {64, 3};
  t.type = GgmlType::Q8_0;
  t.data = data.data();
  t.bytes = data.size();
  EXPECT_EQ(t.rows(), 3u);
  EXPECT_EQ(t.row_bytes(), 68u);
  std::vector<float> row(64);
  dequantize_row(t, 2, row.data());
  for (int j = 0; j < 64; ++j) EXPECT_EQ(row[j], static_cast<float>(5 + j / 32) * static_cast<float>(j % 32)) << j;
  EXPECT_THROW(dequantize_row(t, 3, row.data()), Error);
  EXPECT_THROW(dequantize(GgmlType::Q8_0, data.data(), 48, row.data()), Error);  // not whole blocks
}

// The reference quantizers invert the dequantizers to within half a step per element.
TEST(GgufTypes, QuantizeRoundTrip) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(32 * 64);
  for (float& v : x) v = normal(rng);
  struct Case {
    GgmlType type;
    int levels;  // steps across the block's range (symmetric: 2·amax)
    bool affine;
  };
  for (const Case c : {Case{GgmlType::Q4_0, 16, false}, Case{GgmlType::Q4_1, 15, true}, Case{GgmlType::Q5_0, 32, false},
                       Case{GgmlType::Q5_1, 31, true}, Case{GgmlType::Q8_0, 254, false}}) {
    const std::vector<uint8_t> q = quantize(c.type, x.data(), x.size());
    ASSERT_EQ(q.size(), type_bytes(c.type, x.size()));
    std::vector<float> y(x.size());
    dequantize(c.type, q.data(), y.size(), y.data());
    for (size_t blk = 0; blk < x.size() / 32; ++blk) {
      float lo = x[32 * blk], hi = lo, amax = 0.0f;
      for (int j = 0; j < 32; ++j) {
        lo = std::min(lo, x[32 * blk + j]);
        hi = std::max(hi, x[32 * blk + j]);
        amax = std::max(amax, std::fabs(x[32 * blk + j]));
      }
      const float step = c.affine ? (hi - lo) / static_cast<float>(c.levels) : 2.0f * amax / static_cast<float>(c.levels);
      for (int j = 0; j < 32; ++j) {
        // Half a step, plus the fp16 rounding of the scale (and min) times the code range.
        // Symmetric types map the signed extreme to the lowest code, so the opposite end
        // is clamped one code short: up to a whole step there.
        const float tol = (c.affine ? 0.5f : 1.0f) * step + 2e-3f * (amax + 1.0f);
        EXPECT_NEAR(y[32 * blk + j], x[32 * blk + j], tol)
            << type_name(c.type) << " block " << blk << " element " << j;
      }
    }
  }
  const std::vector<uint8_t> h = quantize(GgmlType::F16, x.data(), 4);
  std::vector<float> y(4);
  dequantize(GgmlType::F16, h.data(), 4, y.data());
  for (int j = 0; j < 4; ++j) EXPECT_EQ(y[j], round_to_half(x[j]));
  const std::vector<uint8_t> bf = quantize(GgmlType::BF16, x.data(), 4);
  dequantize(GgmlType::BF16, bf.data(), 4, y.data());
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(y[j], x[j], std::fabs(x[j]) / 256.0f);
  EXPECT_THROW(quantize(GgmlType::Q4_K, x.data(), 256), Error);
}

}  // namespace
}  // namespace tq::gguf
