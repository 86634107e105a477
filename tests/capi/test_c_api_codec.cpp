// C API: version, errors, the codec table and tq_codec, checked against the C++ API.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "turboquant/c_api.h"
#include "turboquant/codec.h"

namespace {

std::vector<float> random_vectors(size_t n, int dim, uint32_t seed) {
  std::vector<float> x(n * dim);
  for (auto& v : x) {
    seed = seed * 1664525u + 1013904223u;
    v = static_cast<float>((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
  }
  return x;
}

TEST(CApi, VersionMatchesHeader) {
  EXPECT_EQ(tq_api_version(), TQ_API_VERSION);
  EXPECT_STREQ(tq_version(), TQ_VERSION_STRING_FOR_TEST);
  EXPECT_STREQ(tq_status_name(TQ_ERROR_LIBRARY), "TQ_ERROR_LIBRARY");
}

TEST(CApi, CodecTableMatchesCpp) {
  const auto& table = tq::codec_table();
  ASSERT_EQ(tq_codec_count(), static_cast<int>(table.size()));
  for (int i = 0; i < tq_codec_count(); ++i) {
    const char* name = nullptr;
    const char* summary = nullptr;
    ASSERT_EQ(tq_codec_name(i, &name), TQ_OK);
    ASSERT_EQ(tq_codec_summary(i, &summary), TQ_OK);
    EXPECT_EQ(std::string(name), table[i].name);
    EXPECT_EQ(std::string(summary), table[i].summary);
  }
}

TEST(CApi, CodecTableErrorsNameTheProblem) {
  const char* name = nullptr;
  EXPECT_EQ(tq_codec_name(-1, &name), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("codec index -1 out of range"), std::string::npos) << tq_last_error();
  EXPECT_EQ(tq_codec_name(tq_codec_count(), &name), TQ_ERROR_ARGUMENT);
  EXPECT_EQ(name, nullptr);  // outputs are written only on success
  EXPECT_EQ(tq_codec_name(0, nullptr), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("tq_codec_name: name is NULL"), std::string::npos) << tq_last_error();
}

TEST(CApi, CodecSizes) {
  size_t bytes = 0;
  double bits = 0;
  ASSERT_EQ(tq_codec_sizes("f16", 128, &bytes, &bits), TQ_OK);
  EXPECT_EQ(bytes, 256u);
  EXPECT_DOUBLE_EQ(bits, 16.0);
  ASSERT_EQ(tq_codec_sizes("q8_0", 128, &bytes, nullptr), TQ_OK);
  EXPECT_EQ(bytes, 4u * 34u);
  ASSERT_EQ(tq_codec_sizes("turbo3", 128, nullptr, &bits), TQ_OK);
  EXPECT_DOUBLE_EQ(bits, tq::Codec::make("turbo3", 128).bits_per_coord());

  EXPECT_EQ(tq_codec_sizes("nope", 128, &bytes, &bits), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("nope"), std::string::npos) << tq_last_error();
  EXPECT_EQ(tq_codec_sizes("q8_0", 100, &bytes, &bits), TQ_ERROR_LIBRARY);  // not a multiple of 32
  EXPECT_NE(std::string(tq_last_error()).find("tq_codec_sizes: "), std::string::npos);
  EXPECT_EQ(tq_codec_sizes(nullptr, 128, &bytes, &bits), TQ_ERROR_ARGUMENT);
}

// Every codec's records and decoded vectors are byte for byte those of tq::Codec.
TEST(CApi, EncodeDecodeEqualCppForEveryCodec) {
  const int dim = 128;
  const size_t n = 5;
  const auto x = random_vectors(n, dim, 11);
  for (const auto& spec : tq::codec_table()) {
    const std::string name(spec.name);
    SCOPED_TRACE(name);
    tq_codec* c = nullptr;
    ASSERT_EQ(tq_codec_create(name.c_str(), dim, 42, &c), TQ_OK) << tq_last_error();
    const tq::Codec ref = tq::Codec::make(name, dim, 42);
    const size_t rb = tq_codec_record_bytes(c);
    ASSERT_EQ(rb, ref.record_bytes());
    EXPECT_EQ(tq_codec_dim(c), dim);
    std::vector<uint8_t> rec(n * rb), ref_rec(n * rb);
    std::vector<float> y(n * dim), ref_y(n * dim);
    ASSERT_EQ(tq_codec_encode(c, x.data(), n, rec.data()), TQ_OK) << tq_last_error();
    ASSERT_EQ(tq_codec_decode(c, rec.data(), n, y.data()), TQ_OK) << tq_last_error();
    for (size_t i = 0; i < n; ++i) {
      ref.encode(x.data() + i * dim, ref_rec.data() + i * rb);
      ref.decode(ref_rec.data() + i * rb, ref_y.data() + i * dim);
    }
    EXPECT_EQ(rec, ref_rec);
    EXPECT_EQ(0, std::memcmp(y.data(), ref_y.data(), y.size() * sizeof(float)));
    tq_codec_destroy(c);
  }
}

TEST(CApi, EncodeRejectsNanAndWritesNothing) {
  tq_codec* c = nullptr;
  ASSERT_EQ(tq_codec_create("turbo3", 64, 1, &c), TQ_OK);
  auto x = random_vectors(4, 64, 5);
  x[2 * 64 + 7] = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint8_t> rec(4 * tq_codec_record_bytes(c), 0xAB);
  EXPECT_EQ(tq_codec_encode(c, x.data(), 4, rec.data()), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("vector 2 coordinate 7 is NaN or Inf"), std::string::npos)
      << tq_last_error();
  for (uint8_t b : rec) ASSERT_EQ(b, 0xAB);
  tq_codec_destroy(c);
}

TEST(CApi, CodecArgumentErrors) {
  tq_codec* c = nullptr;
  EXPECT_EQ(tq_codec_create("turbo3", 0, 1, &c), TQ_ERROR_LIBRARY);
  EXPECT_EQ(c, nullptr);
  EXPECT_EQ(tq_codec_create("turbo3", 64, 1, nullptr), TQ_ERROR_ARGUMENT);
  ASSERT_EQ(tq_codec_create("f16", 64, 1, &c), TQ_OK);
  float x[64] = {};
  uint8_t rec[128];
  EXPECT_EQ(tq_codec_encode(nullptr, x, 1, rec), TQ_ERROR_ARGUMENT);
  EXPECT_EQ(tq_codec_encode(c, nullptr, 1, rec), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("x is NULL"), std::string::npos);
  EXPECT_EQ(tq_codec_decode(c, rec, 1, nullptr), TQ_ERROR_ARGUMENT);
  EXPECT_EQ(tq_codec_encode(c, nullptr, 0, nullptr), TQ_OK);  // an empty batch needs no buffers
  EXPECT_EQ(tq_codec_encode(c, x, SIZE_MAX / 2, rec), TQ_ERROR_ARGUMENT);  // size overflow
  EXPECT_EQ(tq_codec_dim(nullptr), 0);
  EXPECT_EQ(tq_codec_record_bytes(nullptr), 0u);
  tq_codec_destroy(c);
  tq_codec_destroy(nullptr);
}

TEST(CApi, LastErrorIsPerThread) {
  const char* name = nullptr;
  ASSERT_EQ(tq_codec_name(-5, &name), TQ_ERROR_ARGUMENT);
  const std::string mine = tq_last_error();
  std::string theirs;
  std::thread([&] {
    EXPECT_STREQ(tq_last_error(), "");  // a fresh thread has no error
    tq_codec_sizes("other_thread_codec", 64, nullptr, nullptr);
    theirs = tq_last_error();
  }).join();
  EXPECT_EQ(std::string(tq_last_error()), mine);
  EXPECT_NE(theirs.find("other_thread_codec"), std::string::npos);
}

}  // namespace
