// Session files: an exact round trip (every field, the records bit for bit), a clear
// tq::Error for truncated, corrupted, foreign and mismatched files, and no overwrite
// of an existing file unless asked.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "session_test_util.h"
#include "temp_dir.h"
#include "turboquant/error.h"

namespace tq {
namespace {

using test::make_session;
using test::TempDir;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_MENTIONS(msg, what) EXPECT_NE((msg).find(what), std::string::npos) << "message: '" << (msg) << "'"

void expect_same_records(const KvCache& a, int sa, const KvCache& b, int sb) {
  for (int l = 0; l < a.config().n_layers; ++l) {
    ASSERT_EQ(a.length(l, sa), b.length(l, sb));
    for (int t = 0; t < a.length(l, sa); ++t)
      for (int h = 0; h < a.config().n_kv_heads; ++h) {
        ASSERT_EQ(std::memcmp(a.k_record(l, sa, h, t), b.k_record(l, sb, h, t), a.k_record_bytes(l)), 0);
        ASSERT_EQ(std::memcmp(a.v_record(l, sa, h, t), b.v_record(l, sb, h, t), a.v_record_bytes(l)), 0);
      }
  }
}

TEST(Session, RoundTripIsExact) {
  TempDir tmp;
  for (bool balance : {false, true}) {
    const Session s = make_session(3, 37, balance);
    const std::string path = tmp / (balance ? "b.tqs" : "a.tqs");
    save_session(s, path, false);
    const Session back = load_session(path);
    EXPECT_EQ(back.model, s.model);
    EXPECT_EQ(back.k_codec, "turbo3");
    EXPECT_EQ(back.v_codec, "q8_0");
    EXPECT_EQ(back.tokens, s.tokens);
    EXPECT_EQ(back.logits, s.logits);
    EXPECT_EQ(back.cache, s.cache);
    EXPECT_EQ(back.balance.empty(), !balance);
    EXPECT_NO_THROW(check_session_balance(back, s.balance));
    EXPECT_EQ(serialize_session(back), serialize_session(s));

    // Restored into a larger cache, the records are the saved ones.
    const KvCache original = deserialize_cache(s.cache);
    KvCacheConfig bigger = test::session_cache_config();
    bigger.max_tokens = 1024;
    KvCache cache(bigger);
    const int seq = restore_session_cache(back, cache);
    expect_same_records(original, original.sequences()[0], cache, seq);
  }
}

TEST(Session, DamagedFilesGiveClearErrors) {
  const std::vector<uint8_t> good = serialize_session(make_session(4, 9, true));
  // Every cut is refused; the header-size check and the checksum name the cause.
  for (size_t n = 0; n < good.size(); n += 1 + n / 16) {
    const std::string msg =
        error_of([&] { deserialize_session(std::span<const uint8_t>(good.data(), n)); });
    EXPECT_MENTIONS(msg, "truncated");
  }
  for (size_t pos = 32; pos < good.size(); pos += good.size() / 40) {
    std::vector<uint8_t> bad = good;
    bad[pos] ^= 0x40;
    EXPECT_MENTIONS(error_of([&] { deserialize_session(bad); }), "checksum");
  }
  std::vector<uint8_t> trailing = good;
  trailing.push_back(7);
  EXPECT_MENTIONS(error_of([&] { deserialize_session(trailing); }), "trailing");
  std::vector<uint8_t> version = good;
  version[4] = 9;
  EXPECT_MENTIONS(error_of([&] { deserialize_session(version); }), "version 9");
  // A cache file is not a session file, and the reverse.
  const Session s = make_session(4, 9, false);
  EXPECT_MENTIONS(error_of([&] { deserialize_session(s.cache); }), "not a turboquant session file");
  EXPECT_MENTIONS(error_of([&] { deserialize_cache(good); }), "not a turboquant cache file");
  EXPECT_MENTIONS(error_of([] { load_session("/nonexistent/dir/s.tqs"); }), "/nonexistent/dir/s.tqs");
}

// A Q/K balance whose layer x KV-head x head_dim count wraps around 2^64 to 4
// (2147418113 · 1718039348 · 5 = 2^64 + 4) was read as 4 scales and accepted with those
// dimensions: the first scale(l, h) past the four read out of bounds. Now the count is
// computed without overflow and the file is refused as truncated.
TEST(Session, BalanceCountThatWrapsAroundIsRefused) {
  Session s = make_session(6, 5, false);
  s.balance = QkBalance(1, 1, 4, {1.f, 2.f, 3.f, 4.f});
  std::vector<uint8_t> bytes = serialize_session(s);
  // Payload: model size and hash, the two codec names (u16 length + bytes), then the balance.
  const size_t dims = 32 + 16 + 2 + s.k_codec.size() + 2 + s.v_codec.size();
  const uint32_t layers = 2147418113u, heads = 1718039348u, dim = 5u;
  ASSERT_EQ(uint64_t(layers) * heads * dim, 4u) << "wraps to the four scales the file holds";
  uint32_t was[3];
  std::memcpy(was, bytes.data() + dims, 12);
  ASSERT_EQ(was[0], 1u);
  ASSERT_EQ(was[2], 4u);
  std::memcpy(bytes.data() + dims, &layers, 4);
  std::memcpy(bytes.data() + dims + 4, &heads, 4);
  std::memcpy(bytes.data() + dims + 8, &dim, 4);
  uint64_t sum = 0xcbf29ce484222325ull;
  for (size_t i = 32; i < bytes.size(); ++i) sum = (sum ^ bytes[i]) * 0x100000001b3ull;
  std::memcpy(bytes.data() + 16, &sum, 8);
  EXPECT_MENTIONS(error_of([&] { deserialize_session(bytes); }), "Q/K balance");
}

// session_load_fuzz's first crash: a token count of 0 made the loader memcpy 0 bytes into
// the empty vector's null data() before refusing the file, which UBSan reports (a zero
// logit count did the same); the sanitizer build (scripts/test_sanitizers.sh) runs this.
TEST(Session, NoTokensIsRefusedAndNoLogitsLoads) {
  Session s = make_session(7, 4, false);
  Session no_tokens = s;
  no_tokens.tokens.clear();
  EXPECT_MENTIONS(error_of([&] { deserialize_session(serialize_session(no_tokens)); }), "no tokens");
  Session no_logits = s;
  no_logits.logits.clear();
  EXPECT_TRUE(deserialize_session(serialize_session(no_logits)).logits.empty());
}

TEST(Session, MismatchesAreRefusedNamingBothSides) {
  const Session s = make_session(5, 6, true);
  EXPECT_NO_THROW(check_session_matches(s, s.model, "turbo3", "q8_0", true));
  ModelIdentity other = s.model;
  other.header_hash ^= 1;
  EXPECT_MENTIONS(error_of([&] { check_session_matches(s, other, "turbo3", "q8_0", true); }), "another model file");
  other = s.model;
  other.file_size += 1;
  EXPECT_MENTIONS(error_of([&] { check_session_matches(s, other, "turbo3", "q8_0", true); }), "another model file");
  const std::string codec = error_of([&] { check_session_matches(s, s.model, "turbo4", "q8_0", true); });
  EXPECT_MENTIONS(codec, "K turbo3 / V q8_0");
  EXPECT_MENTIONS(codec, "K turbo4 / V q8_0");
  EXPECT_MENTIONS(error_of([&] { check_session_matches(s, s.model, "turbo3", "q8_0", false); }),
                  "Q/K balance on, this run has it off");
  EXPECT_MENTIONS(error_of([&] { check_session_balance(s, make_session(6, 6, true).balance); }), "other scales");
  EXPECT_MENTIONS(error_of([&] { check_session_balance(s, QkBalance{}); }), "this run has it off");

  KvCacheConfig seed = test::session_cache_config();
  seed.seed = 6;  // other rotations: the records would decode to noise
  KvCache wrong(seed);
  EXPECT_MENTIONS(error_of([&] { restore_session_cache(s, wrong); }), "seed");
  EXPECT_TRUE(wrong.sequences().empty());
  Session short_tokens = s;
  short_tokens.tokens.pop_back();  // the cache holds one position more than the tokens
  KvCache cache(test::session_cache_config());
  EXPECT_MENTIONS(error_of([&] { restore_session_cache(short_tokens, cache); }), "positions");
  EXPECT_TRUE(cache.sequences().empty());
}

// A preset session is restored the way tq run does it: the codecs are built again from the
// profile with the options its cache records, and the records and sink store come back bit
// for bit, also into a larger cache. Codecs built from another profile or for another
// context are refused, naming it, and leave no sequence.
TEST(Session, PresetSessionRestoresUnderRebuiltCodecs) {
  TempDir tmp;
  const Session s = test::make_preset_session(8, 21);
  save_session(s, tmp / "p.tqs", false);
  const Session back = load_session(tmp / "p.tqs");
  EXPECT_EQ(serialize_session(back), serialize_session(s));
  const std::optional<CalibrationSource> src = cache_calibration(back.cache);
  ASSERT_TRUE(src.has_value());
  EXPECT_EQ(src->preset, "tq3");
  EXPECT_EQ(src->options, test::preset_options());
  const KvProfile profile = test::preset_profile();
  EXPECT_EQ(src->profile_hash, profile_hash(profile));

  KvCache same(test::preset_cache_config(profile, src->options));
  EXPECT_EQ(serialize_cache(same, {restore_session_cache(back, same)}), s.cache);  // records, sinks, codecs
  KvCacheConfig larger = test::preset_cache_config(profile, src->options);
  larger.max_tokens = 1024;
  KvCache cache(larger);
  const int seq = restore_session_cache(back, cache);
  expect_same_records(same, same.sequences()[0], cache, seq);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 2; ++h)
      EXPECT_EQ(std::memcmp(cache.v_sink(l, seq, h, 0), same.v_sink(l, 0, h, 0), 64 * sizeof(float)), 0);

  KvProfile other = profile;
  other.heads[2].vv[0] *= 1.01;
  KvCache wrong_profile(test::preset_cache_config(deserialize_profile(serialize_profile(other)), src->options));
  EXPECT_MENTIONS(error_of([&] { restore_session_cache(back, wrong_profile); }), "differ in the calibration profile");
  EXPECT_TRUE(wrong_profile.sequences().empty());
  CalibrationOptions longer = src->options;
  longer.context = 2048;
  KvCache wrong_context(test::preset_cache_config(profile, longer));
  EXPECT_MENTIONS(error_of([&] { restore_session_cache(back, wrong_context); }),
                  "differ in the context they were built for (saved 512 tokens, now 2048 tokens)");
  EXPECT_TRUE(wrong_context.sequences().empty());
  EXPECT_MENTIONS(error_of([&] { check_session_matches(back, back.model, "tq4", "tq4", false); }),
                  "saved with K tq3 / V tq3, this run uses K tq4 / V tq4");
}

TEST(Session, NeverOverwritesUnlessAsked) {
  TempDir tmp;
  const std::string path = tmp / "keep.tqs";
  { std::ofstream(path) << "precious"; }
  const Session s = make_session(7, 5, false);
  EXPECT_MENTIONS(error_of([&] { save_session(s, path, false); }), "already exists");
  std::ifstream in(path);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), "precious");
  save_session(s, path, true);
  EXPECT_EQ(load_session(path).tokens, s.tokens);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);  // no temporary left behind
}

}  // namespace
}  // namespace tq
