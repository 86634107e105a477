// Golden records: the bytes every codec writes must not change under a refactor. Each case
// encodes fixed seeded vectors and compares the FNV-1a 64 of the records with the value
// saved in golden_records.txt (generated from main at 70e230c, before the architecture
// work of issue 10). Cases:
//   <codec> d=<64|128|256>   Codec::encode (the reference) of every codec_table() row, or
//                            "refused" when Codec::make throws tq::Error for that dim
//   cache:<codec> d=128      KvCache::append (lane encoders, per-layer/head seeds, layer
//                            overrides) over 2 layers x 2 KV heads
//   <preset> d=64            build_calibrated on a small synthetic profile, K and V of
//                            every layer and KV head, keys without RoPE frames (rope_range 0)
//   <preset>:frames d=64     the same with the default options (automatic RoPE frames)
// A record change is a format change: only regenerate after deciding that, with
//   TQ_GOLDEN_WRITE=1 build/tests/core/test_golden_records
// which rewrites tests/core/golden_records.txt in the source tree (then commit it).
#include <gtest/gtest.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "calib_test_util.h"
#include "file_frame.h"
#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

constexpr int kVectors = 64;
constexpr uint64_t kSeed = 0x601de2;

// Gaussian rows with a per-row scale spread over 4 decades and one loud channel, so norms,
// scales and outlier handling all show in the bytes.
std::vector<float> golden_inputs(int dim, int rows, uint64_t seed) {
  Rng rng(seed + static_cast<uint64_t>(dim));
  std::vector<float> x(static_cast<size_t>(rows) * dim);
  for (int r = 0; r < rows; ++r) {
    const double scale = std::pow(10.0, 4.0 * rng.uniform() - 2.0);
    for (int i = 0; i < dim; ++i) {
      const double loud = i == dim / 3 ? 8.0 : 1.0;
      x[static_cast<size_t>(r) * dim + i] = static_cast<float>(scale * loud * rng.gaussian());
    }
  }
  return x;
}

std::string hex(uint64_t h) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

// "<name> d=<dim>" -> hash or "refused".
using Golden = std::map<std::string, std::string>;

std::string case_name(std::string_view name, int dim) { return std::string(name) + " d=" + std::to_string(dim); }

// The codec for (spec, dim), or nothing when the codec refuses that dimension.
std::optional<Codec> try_make(const CodecSpec& spec, int dim) {
  try {
    return Codec::make(spec, dim, kSeed);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::string reference_hash(const CodecSpec& spec, int dim) {
  const std::optional<Codec> made = try_make(spec, dim);
  if (!made) return "refused";
  const Codec& c = *made;
  const std::vector<float> x = golden_inputs(dim, kVectors, kSeed);
  std::vector<uint8_t> rec(c.record_bytes() * kVectors);
  for (int r = 0; r < kVectors; ++r)
    c.encode(x.data() + static_cast<size_t>(r) * dim, rec.data() + static_cast<size_t>(r) * c.record_bytes());
  return hex(detail::fnv1a64(rec.data(), rec.size()));
}

// Records as the paged cache writes them: layer 0 overridden to q8_0, so the lookup and
// the per-layer/head seed rule are in the bytes too.
std::string cache_hash(const CodecSpec& spec, int dim) {
  KvCacheConfig cfg;
  cfg.n_layers = 2;
  cfg.n_kv_heads = 2;
  cfg.head_dim = dim;
  cfg.k_codec = std::string(spec.name);
  cfg.v_codec = std::string(spec.name);
  cfg.layer_codecs[0] = {"q8_0", std::string(spec.name)};
  cfg.block_tokens = 16;
  cfg.max_tokens = kVectors;
  cfg.seed = kSeed;
  KvCache cache(cfg);
  const int seq = cache.add_sequence();
  const int tokens = kVectors / cfg.n_kv_heads;
  const std::vector<float> k = golden_inputs(dim, tokens * cfg.n_kv_heads, kSeed + 1);
  const std::vector<float> v = golden_inputs(dim, tokens * cfg.n_kv_heads, kSeed + 2);
  uint64_t h = detail::fnv1a64(nullptr, 0);
  for (int l = 0; l < cfg.n_layers; ++l) {
    cache.append(l, seq, tokens, k.data(), v.data());
    for (int t = 0; t < tokens; ++t)
      for (int kh = 0; kh < cfg.n_kv_heads; ++kh) {
        h = detail::fnv1a64(cache.k_record(l, seq, kh, t), cache.k_record_bytes(l), h);
        h = detail::fnv1a64(cache.v_record(l, seq, kh, t), cache.v_record_bytes(l), h);
      }
  }
  return hex(h);
}

// Every layer's K and V codec of a preset built from a synthetic profile (d = 64).
std::string preset_hash(const CodecSpec& preset, const KvProfile& prof, const CalibrationOptions& opt) {
  const CalibratedCodecs cc = build_calibrated(prof, preset, opt);
  const int dim = prof.head_dim;
  const std::vector<float> x = golden_inputs(dim, kVectors, kSeed + 3);
  uint64_t h = detail::fnv1a64(nullptr, 0);
  for (const auto* sides : {&cc.keys, &cc.values})
    for (const CalibratedSide& side : *sides)
      for (const auto& map : side.maps) {
        const Codec c = Codec::make_calibrated(preset, map, side.groups);
        std::vector<uint8_t> rec(c.record_bytes());
        for (int r = 0; r < kVectors; ++r) {
          c.encode(x.data() + static_cast<size_t>(r) * dim, rec.data());
          h = detail::fnv1a64(rec.data(), rec.size(), h);
        }
      }
  return hex(h);
}

Golden compute_all() {
  Golden g;
  for (const CodecSpec& spec : codec_table()) {
    for (int dim : {64, 128, 256}) g[case_name(spec.name, dim)] = reference_hash(spec, dim);
    g["cache:" + case_name(spec.name, 128)] = cache_hash(spec, 128);
  }
  const KvProfile prof = test::random_profile(17, 2, 4, 2, 64);
  CalibrationOptions no_frames;
  no_frames.rope_range = 0;
  for (const CodecSpec& preset : preset_table()) {
    g[case_name(preset.name, 64)] = preset_hash(preset, prof, no_frames);
    g[case_name(std::string(preset.name) + ":frames", 64)] = preset_hash(preset, prof, CalibrationOptions{});
  }
  return g;
}

Golden read_golden(const std::string& path) {
  Golden g;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t cut = line.rfind(' ');
    g[line.substr(0, cut)] = line.substr(cut + 1);
  }
  return g;
}

void write_golden(const std::string& path, const Golden& g) {
  std::ofstream f(path);
  f << "# FNV-1a 64 of each case's records (tests/core/test_golden_records.cpp).\n"
       "# Regenerate only for an intended format change: TQ_GOLDEN_WRITE=1 build/tests/core/test_golden_records\n";
  for (const auto& [name, hash] : g) f << name << ' ' << hash << '\n';
}

TEST(GoldenRecords, RefusalsAreTqErrors) {
  for (const CodecSpec& spec : codec_table())
    for (int dim : {64, 128, 256}) {
      try {
        (void)Codec::make(spec, dim, kSeed);
      } catch (const Error&) {
        // refused the documented way
      } catch (...) {
        ADD_FAILURE() << spec.name << " d=" << dim << " refused with something other than tq::Error";
      }
    }
}

TEST(GoldenRecords, BytesMatchSavedHashes) {
  const std::string path = TQ_GOLDEN_RECORDS_FILE;
  const Golden now = compute_all();
  if (std::getenv("TQ_GOLDEN_WRITE")) {
    write_golden(path, now);
    GTEST_SKIP() << "wrote " << now.size() << " cases to " << path;
  }
  const Golden saved = read_golden(path);
  ASSERT_FALSE(saved.empty()) << "no golden records in " << path;
  for (const auto& [name, hash] : saved) {
    const auto it = now.find(name);
    if (it == now.end()) {
      ADD_FAILURE() << "case '" << name << "' (codec and head dim) is no longer produced";
      continue;
    }
    EXPECT_EQ(it->second, hash) << "records of codec " << name << " changed (saved " << hash << ", now "
                                << it->second << ")";
  }
  for (const auto& [name, hash] : now)
    EXPECT_TRUE(saved.count(name)) << "case '" << name << "' has no saved hash: regenerate " << path;
}

}  // namespace
}  // namespace tq
