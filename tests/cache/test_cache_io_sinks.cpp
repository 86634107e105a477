// Save/load of caches that keep attention sinks (KvCacheConfig::sink_tokens) or use a
// calibrated preset (docs/FORMATS.md, "Cache file", version 2). A round trip is bit-exact:
// the loaded cache serializes to the same bytes and attention over it gives the same floats,
// bit for bit. A preset's records load only under the codecs they were encoded with, built
// again from the same profile and options: another profile, model, preset, context or sink
// count is refused naming what differs, and a refused load leaves the cache as it was.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cache_file_test_util.h"
#include "core/calib_test_util.h"
#include "cpu/attention_test_util.h"
#include "temp_dir.h"
#include "turboquant/attention.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"

namespace tq {
namespace {

constexpr int kLayers = 2, kDim = 64, kKvHeads = 2, kHeads = 4, kTokens = 40;

// A profile as a run finds it: through its file's bytes (statistics rounded to f32).
KvProfile file_profile(const KvProfile& p) { return deserialize_profile(serialize_profile(p)); }

const KvProfile& profile() {
  static const KvProfile p = file_profile(test::random_profile(21, kLayers, kHeads, kKvHeads, kDim));
  return p;
}

std::shared_ptr<const CalibratedCodecs> codecs(const KvProfile& p, const std::string& preset,
                                               const CalibrationOptions& opt = {}) {
  return std::make_shared<const CalibratedCodecs>(build_calibrated(p, *find_preset(preset), opt));
}

// Plain codecs keep `sinks` sink tokens; a preset takes them from its codecs, and layer 1
// mixes it with a codec of the table (V q8_0).
KvCacheConfig config(const std::string& codec, int sinks, std::shared_ptr<const CalibratedCodecs> cc = nullptr) {
  KvCacheConfig c;
  c.n_layers = kLayers;
  c.n_kv_heads = kKvHeads;
  c.head_dim = kDim;
  c.k_codec = c.v_codec = codec;
  c.block_tokens = 16;
  c.max_tokens = 128;
  c.seed = 3;
  c.sink_tokens = sinks;
  if (find_preset(codec)) {
    c.calibrated = cc ? cc : codecs(profile(), codec);
    c.sink_tokens = c.calibrated->sink_tokens;
    c.layer_codecs[1] = {codec, "q8_0"};
  }
  return c;
}

int fill(KvCache& cache) {
  const int seq = cache.add_sequence();
  Rng rng(12);
  for (int l = 0; l < kLayers; ++l) {
    const auto k = test::gaussian(rng, static_cast<size_t>(kTokens) * kKvHeads * kDim);
    const auto v = test::gaussian(rng, k.size());
    cache.append(l, seq, kTokens, k.data(), v.data());
  }
  return seq;
}

// Every layer's causal attention over the sequence, rows concatenated.
std::vector<float> attention(const KvCache& cache, int seq) {
  Rng rng(5);
  const auto q = test::gaussian(rng, static_cast<size_t>(kTokens) * kHeads * kDim);
  AttentionParams p;
  p.n_heads = kHeads;
  p.scale = 0.125f;
  std::vector<float> out, layer(q.size());
  for (int l = 0; l < kLayers; ++l) {
    attend(cache, l, seq, q.data(), kTokens, 0, p, layer.data());
    out.insert(out.end(), layer.begin(), layer.end());
  }
  return out;
}

// Bit for bit: the same floats (EXPECT_EQ on float vectors compares with ==, and memcmp
// rules out a -0/+0 or NaN difference).
void expect_bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

// The loaded cache holds what was saved: the same file bytes again, the same attention
// output; and loaded into a fresh cache of the same configuration, the same.
void expect_round_trip(const KvCache& cache, int seq, const KvCacheConfig& target_cfg,
                       std::shared_ptr<const CalibratedCodecs> rebuilt) {
  const std::vector<uint8_t> bytes = serialize_cache(cache, {seq});
  const KvCache loaded = deserialize_cache(bytes, {}, rebuilt);
  EXPECT_EQ(loaded.sink_tokens(), cache.sink_tokens());
  EXPECT_EQ(serialize_cache(loaded, {seq}), bytes);
  expect_bitwise_equal(attention(loaded, seq), attention(cache, seq));
  KvCache target(target_cfg);
  const std::vector<int> ids = deserialize_sequences(target, bytes);
  ASSERT_EQ(ids.size(), 1u);
  expect_bitwise_equal(attention(target, ids[0]), attention(cache, seq));
}

TEST(CacheIoSinks, PlainCacheRoundTripsBitwise) {
  KvCache cache(config("turbo3", 0));
  expect_round_trip(cache, fill(cache), config("turbo3", 0), nullptr);
}

TEST(CacheIoSinks, SinkCacheRoundTripsBitwise) {
  for (const char* codec : {"turbo3", "rht3", "q8_0"}) {
    SCOPED_TRACE(codec);
    KvCache cache(config(codec, 4));
    const int seq = fill(cache);
    expect_round_trip(cache, seq, config(codec, 4), nullptr);
    // The sink store itself came back (attention reads it for positions 0-3).
    const KvCache loaded = deserialize_cache(serialize_cache(cache, {seq}));
    for (int pos = 0; pos < 4; ++pos)
      EXPECT_EQ(std::memcmp(loaded.k_sink(1, seq, 1, pos), cache.k_sink(1, seq, 1, pos),
                            sizeof(float) * cache.k_codec(1, 1).code_dim()),
                0);
  }
}

TEST(CacheIoSinks, CalibratedCacheRoundTripsBitwiseUnderRebuiltCodecs) {
  test::TempDir tmp;
  for (const char* preset : {"tq3", "tq2.5"}) {
    SCOPED_TRACE(preset);
    KvCache cache(config(preset, 0));
    ASSERT_EQ(cache.sink_tokens(), 1);
    const int seq = fill(cache);
    // What a later process does: read the source from the file, build the codecs again.
    const std::vector<uint8_t> bytes = serialize_cache(cache, {seq});
    const std::optional<CalibrationSource> source = cache_calibration(bytes);
    ASSERT_TRUE(source.has_value());
    EXPECT_EQ(source->preset, preset);
    EXPECT_EQ(source->profile_hash, profile_hash(profile()));
    EXPECT_EQ(source->model_hash, profile().model_hash);
    EXPECT_EQ(source->options, CalibrationOptions{});
    const auto rebuilt = codecs(profile(), preset, source->options);
    expect_round_trip(cache, seq, config(preset, 0, rebuilt), rebuilt);
    // Through a file as well.
    const std::string path = tmp / (std::string(preset) + ".tqkv");
    save_cache(cache, path);
    expect_bitwise_equal(attention(load_cache(path, {}, rebuilt), seq), attention(cache, seq));
  }
  EXPECT_FALSE(cache_calibration(serialize_cache(KvCache(config("turbo3", 2)), {})).has_value());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_MENTIONS(msg, what) EXPECT_NE((msg).find(what), std::string::npos) << "message: '" << (msg) << "'"

// The file of a tq3 cache (default options) against codecs built otherwise: refused by
// deserialize_cache with those codecs (naming `what`, when given) and by
// deserialize_sequences into a cache that has them (naming `into_what`); the target cache
// keeps no sequence.
void expect_refused(const std::vector<uint8_t>& bytes, const KvCacheConfig& target_cfg, const std::string& what,
                    const std::string& into_what) {
  SCOPED_TRACE(into_what);
  if (!what.empty()) {
    EXPECT_MENTIONS(error_of([&] { (void)deserialize_cache(bytes, {}, target_cfg.calibrated); }), what);
  }
  KvCache target(target_cfg);
  const std::string msg = error_of([&] { (void)deserialize_sequences(target, bytes); });
  EXPECT_MENTIONS(msg, "does not match this cache");
  EXPECT_MENTIONS(msg, into_what);
  EXPECT_TRUE(target.sequences().empty()) << "a refused load left a sequence";
}
void expect_refused(const std::vector<uint8_t>& bytes, const KvCacheConfig& target_cfg, const std::string& what) {
  expect_refused(bytes, target_cfg, what, what);
}

TEST(CacheIoSinks, OtherCodecsAreRefusedNamingWhatDiffers) {
  KvCache cache(config("tq3", 0));
  const std::vector<uint8_t> bytes = serialize_cache(cache, {fill(cache)});

  // No codecs at all: a preset file cannot be loaded by name alone.
  EXPECT_MENTIONS(error_of([&] { (void)deserialize_cache(bytes); }), "calibrated tq3 codecs");

  KvProfile perturbed = profile();
  perturbed.heads[1].kk[5 * kDim + 5] *= 1.01;  // one key moment of one head, 1%
  expect_refused(bytes, config("tq3", 0, codecs(file_profile(perturbed), "tq3")),
                 "tq3 codecs that differ in the calibration profile (saved 0x");

  KvProfile other_model = profile();
  other_model.model_hash ^= 1;
  expect_refused(bytes, config("tq3", 0, codecs(other_model, "tq3")), "differ in the model the profile was measured on");

  expect_refused(bytes, config("tq4", 0), "differ in the preset (saved tq3, now tq4)", "codecs tq3/tq3 vs tq4/tq4");

  CalibrationOptions context;
  context.context = 64;
  expect_refused(bytes, config("tq3", 0, codecs(profile(), "tq3", context)),
                 "differ in the context they were built for (saved 2048 tokens, now 64 tokens)");

  CalibrationOptions sinks;
  sinks.sink_tokens = 2;
  expect_refused(bytes, config("tq3", 0, codecs(profile(), "tq3", sinks)), "differ in the sink tokens (saved 1, now 2)",
                 "file keeps 1 sink tokens, cache 2");
  KvCacheConfig no_sinks = config("tq3", 0);
  no_sinks.sink_tokens = 0;
  expect_refused(bytes, no_sinks, "", "file keeps 1 sink tokens, cache 0");

  CalibrationOptions ridge;
  ridge.ridge = 0.2;
  expect_refused(bytes, config("tq3", 0, codecs(profile(), "tq3", ridge)), "differ in the build options (saved ridge 0.1");

  // The same source, other codecs: the profile before its f32 rounding hashes like the file
  // (the hash is of the file's bytes) but builds slightly other maps. Only the per-layer
  // codec checksums tell.
  const KvProfile unrounded = test::random_profile(21, kLayers, kHeads, kKvHeads, kDim);
  ASSERT_EQ(profile_hash(unrounded), profile_hash(profile()));
  expect_refused(bytes, config("tq3", 0, codecs(unrounded, "tq3")), "layer 0 K codecs differ");
}

// Offsets in a version 2 file (docs/FORMATS.md, "Cache file"), for damage behind the checksum.
struct Layout {
  size_t calibration, first_layer, sequences;
};
Layout layout_of(const KvCache& c) {
  Layout l;
  l.calibration = 32 + 5 * 4 + 8 + 4;
  const std::string preset = c.config().calibrated ? std::string(c.config().calibrated->preset->name) : "";
  l.first_layer = l.calibration + 2 + preset.size() + (preset.empty() ? 0 : 8 + 8 + 4 + 8 + 4 + 4 + 4 + 8 + 4);
  l.sequences = l.first_layer;
  for (int layer = 0; layer < c.config().n_layers; ++layer)
    l.sequences += 2 + c.k_codec(layer, 0).name().size() + 2 + c.v_codec(layer, 0).name().size() + 4 + 4 + 8 + 8;
  return l;
}

TEST(CacheIoSinks, DamagedCalibratedFilesGiveClearErrors) {
  KvCache cache(config("tq3", 0));
  const int seq = fill(cache);
  const std::vector<uint8_t> good = serialize_cache(cache, {seq});
  const auto rebuilt = codecs(profile(), "tq3");
  ASSERT_NO_THROW((void)deserialize_cache(good, {}, rebuilt));
  for (size_t n = 0; n < good.size(); n += 1 + n / 8)
    EXPECT_MENTIONS(error_of([&] { (void)deserialize_cache(std::span<const uint8_t>(good.data(), n), {}, rebuilt); }),
                    "truncated");
  for (size_t pos = 32; pos < good.size(); pos += good.size() / 50) {
    std::vector<uint8_t> bad = good;
    bad[pos] ^= 0x08;
    EXPECT_MENTIONS(error_of([&] { (void)deserialize_cache(bad, {}, rebuilt); }), "checksum mismatch");
  }

  // Behind a valid checksum: the layout's fields are checked one by one.
  const Layout at = layout_of(cache);
  const std::vector<uint8_t> payload = test::payload_of(good);
  auto refused = [&](const std::function<void(std::vector<uint8_t>&)>& damage) {
    std::vector<uint8_t> p = payload;
    damage(p);
    const std::vector<uint8_t> file = test::reframe(p, "TQKV", kCacheFileVersion);
    std::string msg = error_of([&] { (void)deserialize_cache(file, {}, rebuilt); });
    KvCache target(config("tq3", 0, rebuilt));
    const std::string into = error_of([&] { (void)deserialize_sequences(target, file); });
    EXPECT_FALSE(into.empty()) << "deserialize_sequences loaded a damaged file";
    EXPECT_TRUE(target.sequences().empty());
    return msg;
  };
  ASSERT_EQ(payload[at.calibration - 32], 3);  // u16 length of "tq3"
  EXPECT_MENTIONS(refused([&](auto& p) { p[at.calibration - 32 + 2 + 2] = '9'; }), "unknown calibrated preset 'tq9'");
  EXPECT_MENTIONS(refused([&](auto& p) { p[at.calibration - 32 + 2 + 3 + 2] ^= 1; }), "differ in the calibration profile");
  EXPECT_MENTIONS(refused([&](auto& p) { p[at.calibration - 32 + 2 + 3 + 16] ^= 1; }), "context");
  // Layer 0's K codec checksum (after its names "tq3", "tq3" and the two record sizes).
  EXPECT_MENTIONS(refused([&](auto& p) { p[at.first_layer - 32 + 5 + 5 + 8] ^= 1; }), "layer 0 K codecs differ");
  // The first K sink float of layer 0, after the sequence header and layer 0's records.
  const size_t sink = at.sequences - 32 + 4 + 4 + 4 * kLayers +
                      static_cast<size_t>(kTokens) * kKvHeads * (cache.k_record_bytes(0) + cache.v_record_bytes(0));
  float first;
  std::memcpy(&first, &payload[sink], 4);
  ASSERT_EQ(first, cache.k_sink(0, seq, 0, 0)[0]) << "the layout in docs/FORMATS.md";
  EXPECT_MENTIONS(refused([&](auto& p) {
                    const float nan = std::numeric_limits<float>::quiet_NaN();
                    std::memcpy(&p[sink], &nan, 4);
                  }),
                  "K sink vector holds NaN or Inf");
  // A preset named by a layer without a calibration record (the record's name emptied).
  std::vector<uint8_t> unnamed(payload.begin(), payload.begin() + (at.calibration - 32));
  unnamed.push_back(0);
  unnamed.push_back(0);
  unnamed.insert(unnamed.end(), payload.begin() + (at.first_layer - 32), payload.end());
  EXPECT_MENTIONS(error_of([&] { (void)deserialize_cache(test::reframe(unnamed, "TQKV", kCacheFileVersion), {}, rebuilt); }),
                  "uses the calibrated preset tq3 but the file records no calibration");
}

}  // namespace
}  // namespace tq

namespace tq {
namespace {

// A cache file naming a huge sequence id once made the loader allocate a table entry per id
// up to it (1.7 GB: the fuzzer's out-of-memory input, fuzz/cache_load_fuzz.cpp); ids are
// now bounded and such a file is refused.
TEST(CacheIoLimits, HugeSequenceIdIsRefusedWithoutAllocating) {
  KvCache cache(config("turbo3", 0));
  EXPECT_THROW(cache.add_sequence_with_id(KvCache::kMaxSequences), Error);
  EXPECT_THROW(cache.add_sequence_with_id(1 << 24), Error);
  cache.add_sequence_with_id(KvCache::kMaxSequences - 1);
  EXPECT_TRUE(cache.has_sequence(KvCache::kMaxSequences - 1));
}

}  // namespace
}  // namespace tq
