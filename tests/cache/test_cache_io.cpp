// Save/load: bit-exact round trips of a whole cache and of one sequence, refusal to
// overwrite, and a clear tq::Error for truncated, corrupted and mismatched files.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cache_file_test_util.h"
#include "temp_dir.h"
#include "turboquant/attention.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

namespace fs = std::filesystem;

KvCacheConfig config() {
  KvCacheConfig c;
  c.n_layers = 2;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.k_codec = "rht3";
  c.v_codec = "turbo2.5";
  c.layer_codecs[1] = {"f16", "q4_0"};
  c.block_tokens = 4;
  c.max_tokens = 64;
  c.seed = 9;
  return c;
}

KvCache filled(uint64_t seed) {
  KvCache cache(config());
  Rng rng(seed);
  const int a = cache.add_sequence(), b = cache.add_sequence();
  for (int s : {a, b})
    for (int l = 0; l < 2; ++l) {
      const int n = s == a ? 13 : 6 + l;  // ragged, and layers of b differ in length
      std::vector<float> k(n * 2 * 64), v(k.size());
      for (auto& x : k) x = static_cast<float>(rng.gaussian());
      for (auto& x : v) x = static_cast<float>(rng.gaussian());
      cache.append(l, s, n, k.data(), v.data());
    }
  return cache;
}

void expect_same_records(const KvCache& x, int sx, const KvCache& y, int sy) {
  for (int l = 0; l < 2; ++l) {
    ASSERT_EQ(x.length(l, sx), y.length(l, sy));
    for (int t = 0; t < x.length(l, sx); ++t)
      for (int h = 0; h < 2; ++h) {
        ASSERT_EQ(std::memcmp(x.k_record(l, sx, h, t), y.k_record(l, sy, h, t), x.k_record_bytes(l)), 0);
        ASSERT_EQ(std::memcmp(x.v_record(l, sx, h, t), y.v_record(l, sy, h, t), x.v_record_bytes(l)), 0);
      }
  }
}

using test::TempDir;

TEST(CacheIo, WholeCacheRoundTripIsBitExact) {
  TempDir tmp;
  const KvCache cache = filled(1);
  save_cache(cache, tmp / "c.tqkv");
  const KvCache back = load_cache(tmp / "c.tqkv");
  EXPECT_EQ(back.sequences(), cache.sequences());
  EXPECT_EQ(back.config().layer_codecs, cache.config().layer_codecs);
  EXPECT_EQ(back.bytes_per_token(), cache.bytes_per_token());
  for (int s : cache.sequences()) expect_same_records(cache, s, back, s);
  // And attention reads the same values.
  AttentionParams p;
  p.n_heads = 4;
  p.scale = 0.125f;
  std::vector<float> q(4 * 64, 0.3f), o1(q.size()), o2(q.size());
  attend(cache, 0, 0, q.data(), 1, 12, p, o1.data());
  attend(back, 0, 0, q.data(), 1, 12, p, o2.data());
  EXPECT_EQ(o1, o2);
}

TEST(CacheIo, OneSequenceIntoAnotherCache) {
  TempDir tmp;
  const KvCache cache = filled(2);
  save_sequence(cache, 1, tmp / "s.tqkv");
  KvCache other = filled(3);
  other.remove_sequence(0);
  const std::vector<int> ids = load_sequences(other, tmp / "s.tqkv");
  ASSERT_EQ(ids.size(), 1u);
  expect_same_records(cache, 1, other, ids[0]);

  KvCacheConfig different = config();
  different.seed = 10;  // other rotations: the records would be meaningless
  KvCache wrong(different);
  EXPECT_THROW(load_sequences(wrong, tmp / "s.tqkv"), Error);
  different = config();
  different.layer_codecs.clear();
  KvCache wrong2(different);
  EXPECT_THROW(load_sequences(wrong2, tmp / "s.tqkv"), Error);
  EXPECT_TRUE(wrong2.sequences().empty());
}

TEST(CacheIo, NeverOverwritesUnlessAsked) {
  TempDir tmp;
  const std::string path = tmp / "keep.bin";
  { std::ofstream(path) << "precious"; }
  const KvCache cache = filled(4);
  EXPECT_THROW(save_cache(cache, path), Error);
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
  save_cache(cache, path, /*overwrite=*/true);
  EXPECT_EQ(load_cache(path).sequences(), cache.sequences());
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(tmp.dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);  // no temporary left behind
}

// A version 1 file (before sinks and presets: no sink_tokens, calibration record, codec
// checksums or sink store) still loads, bit for bit; written here from a version 2 file by
// dropping those fields (docs/FORMATS.md, "Cache file").
TEST(CacheIo, Version1FilesStillLoad) {
  const KvCache cache = filled(6);
  const std::vector<uint8_t> v2 = test::payload_of(serialize_cache(cache, cache.sequences()));
  std::vector<uint8_t> v1(v2.begin(), v2.begin() + 28);  // shapes and seed
  ASSERT_EQ(v2[28] | v2[29] | v2[30] | v2[31], 0);         // sink_tokens 0
  ASSERT_EQ(v2[32] | v2[33], 0);                           // no calibration record
  size_t at = 34;
  for (int l = 0; l < 2; ++l) {
    const size_t k_name = v2[at] | v2[at + 1] << 8, v_name = v2[at + 2 + k_name] | v2[at + 3 + k_name] << 8;
    const size_t names_and_sizes = 2 + k_name + 2 + v_name + 8;
    v1.insert(v1.end(), v2.begin() + at, v2.begin() + at + names_and_sizes);
    at += names_and_sizes + 16;  // the two codec checksums
  }
  v1.insert(v1.end(), v2.begin() + at, v2.end());
  const KvCache back = deserialize_cache(test::reframe(v1, "TQKV", 1));
  for (int s : cache.sequences()) expect_same_records(cache, s, back, s);
  EXPECT_EQ(serialize_cache(back, back.sequences()), serialize_cache(cache, cache.sequences()));
  KvCache into(config());
  EXPECT_EQ(deserialize_sequences(into, test::reframe(v1, "TQKV", 1)).size(), 2u);
  KvCacheConfig sinks = config();
  sinks.sink_tokens = 1;
  KvCache with_sinks(sinks);
  EXPECT_THROW(deserialize_sequences(with_sinks, test::reframe(v1, "TQKV", 1)), Error);
}

TEST(CacheIo, DamagedFilesGiveClearErrors) {
  const KvCache cache = filled(5);
  const std::vector<uint8_t> good = serialize_cache(cache, cache.sequences());
  auto expect_error = [](std::vector<uint8_t> bytes, const char* needle) {
    try {
      deserialize_cache(bytes);
      ADD_FAILURE() << "no error for a file expected to fail with '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  for (size_t n : {size_t(0), size_t(3), size_t(31), size_t(32), good.size() / 2, good.size() - 1})
    expect_error(std::vector<uint8_t>(good.begin(), good.begin() + n), "truncated");
  auto flipped = good;
  flipped[good.size() / 3] ^= 0x10;
  expect_error(flipped, "checksum");
  auto magic = good;
  magic[0] = 'X';
  expect_error(magic, "magic");
  auto version = good;
  version[4] = 99;
  expect_error(version, "version 99 is not supported (this build reads versions 1 to 3)");
  auto trailing = good;
  trailing.push_back(0);
  expect_error(trailing, "trailing");
  EXPECT_THROW(load_cache("/nonexistent/dir/x.tqkv"), Error);
}

}  // namespace
}  // namespace tq
