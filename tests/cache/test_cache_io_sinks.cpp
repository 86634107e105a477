// Save/load of caches that keep attention sinks (KvCacheConfig::sink_tokens) or use a
// calibrated preset. cache_io.h promises a bit-exact round trip, so attention over the
// loaded cache must equal attention over the saved one (attend_reference, 1e-6 relative
// per row: same bytes, same arithmetic), or the loader must refuse with a tq::Error; a
// silently different cache is a bug.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/calib_test_util.h"
#include "cpu/attention_test_util.h"
#include "turboquant/attention.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"

namespace tq {
namespace {

constexpr int kDim = 64, kKvHeads = 2, kHeads = 4, kTokens = 40;

KvCacheConfig config(const std::string& codec, int sinks) {
  KvCacheConfig c;
  c.n_layers = 1;
  c.n_kv_heads = kKvHeads;
  c.head_dim = kDim;
  c.k_codec = c.v_codec = codec;
  c.block_tokens = 16;
  c.max_tokens = 128;
  c.seed = 3;
  c.sink_tokens = sinks;
  if (find_preset(codec))
    c.calibrated = std::make_shared<const CalibratedCodecs>(
        build_calibrated(test::random_profile(21, 1, kHeads, kKvHeads, kDim), *find_preset(codec)));
  return c;
}

int fill(KvCache& cache) {
  const int seq = cache.add_sequence();
  Rng rng(12);
  const auto k = test::gaussian(rng, static_cast<size_t>(kTokens) * kKvHeads * kDim);
  const auto v = test::gaussian(rng, k.size());
  cache.append(0, seq, kTokens, k.data(), v.data());
  return seq;
}

std::vector<float> attention(const KvCache& cache, int seq) {
  Rng rng(5);
  const auto q = test::gaussian(rng, static_cast<size_t>(kTokens) * kHeads * kDim);
  AttentionParams p;
  p.n_heads = kHeads;
  p.scale = 0.125f;
  std::vector<float> out(q.size());
  attend_reference(cache, 0, seq, q.data(), kTokens, 0, p, out.data());
  return out;
}

// Plain caches round-trip exactly.
TEST(CacheIoSinks, PlainCacheRoundTrips) {
  KvCache cache(config("turbo3", 0));
  const int seq = fill(cache);
  const KvCache loaded = deserialize_cache(serialize_cache(cache, {seq}));
  EXPECT_EQ(loaded.sink_tokens(), 0);
  EXPECT_LE(test::max_row_rel_error(attention(loaded, seq), attention(cache, seq), kDim), 1e-6);
  KvCache target(config("turbo3", 0));
  const std::vector<int> ids = deserialize_sequences(target, serialize_cache(cache, {seq}));
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_LE(test::max_row_rel_error(attention(target, ids[0]), attention(cache, seq), kDim), 1e-6);
}

// The file format holds neither the sink store nor calibrated codecs: saving such a cache,
// or loading sequences into one, is refused with an error that says so, never done partly.
void expect_refused(const std::string& codec, int sinks) {
  KvCache cache(config(codec, sinks));
  const int seq = fill(cache);
  try {
    (void)serialize_cache(cache, {seq});
    ADD_FAILURE() << codec << " sinks=" << sinks << ": saved without its sinks/profile";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be saved or loaded yet"), std::string::npos) << e.what();
  }
  KvCache plain(config("turbo3", 0));
  const std::vector<uint8_t> bytes = serialize_cache(plain, {fill(plain)});
  const int before = static_cast<int>(cache.sequences().size());
  EXPECT_THROW(deserialize_sequences(cache, bytes), Error);
  EXPECT_EQ(static_cast<int>(cache.sequences().size()), before) << "a refused load changed the cache";
}

TEST(CacheIoSinks, SinkCacheIsRefused) { expect_refused("turbo3", 4); }
TEST(CacheIoSinks, CalibratedCacheIsRefused) { expect_refused("tq3", 1); }

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
