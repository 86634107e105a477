// KvProfile: the builder's means of outer products, check(), and the profile file: exact
// round trip (matrices at f32 precision), every single-byte flip / truncation / wrong
// magic rejected with tq::Error, checksum-consistent corruption never crashing the parser.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "calib_test_util.h"
#include "temp_dir.h"
#include "turboquant/error.h"
#include "turboquant/kv_profile.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

// The file framing's header (src/core/file_frame.h): magic, version, size, checksum, zero.
constexpr size_t kHeader = 32;


constexpr int kLayers = 2, kHeads = 4, kKvHeads = 2, kDim = 16;

struct Rows {
  std::vector<float> q, k, v;
  int n;
};

Rows random_rows(Rng& rng, int n) {
  Rows r{std::vector<float>(static_cast<size_t>(n) * kHeads * kDim), std::vector<float>(static_cast<size_t>(n) * kKvHeads * kDim),
         std::vector<float>(static_cast<size_t>(n) * kKvHeads * kDim), n};
  for (float& x : r.q) x = static_cast<float>(rng.gaussian());
  for (float& x : r.k) x = static_cast<float>(0.5 + rng.gaussian());
  for (float& x : r.v) x = static_cast<float>(rng.gaussian() - 0.25);
  return r;
}

KvProfile built_profile(std::vector<std::vector<Rows>>* keep = nullptr) {
  Rng rng(2024);
  KvProfileBuilder b(kLayers, kHeads, kKvHeads, kDim);
  std::vector<std::vector<Rows>> all(kLayers);
  for (int l = 0; l < kLayers; ++l)
    for (int n : {7, 13}) {  // two chunks per layer
      all[l].push_back(random_rows(rng, n));
      const Rows& r = all[l].back();
      b.add(l, r.n, r.q.data(), r.k.data(), r.v.data());
    }
  KvProfile p = b.finish();
  if (keep) *keep = std::move(all);
  return p;
}

KvProfile complete_profile() {
  KvProfile p = built_profile();
  p.model_hash = 0x0123456789abcdefull;
  p.model_name = "tiny-test-model";
  test::fill_rope_and_weights(p);
  p.k_sensitivity = {0.5, 2.0};
  p.v_sensitivity = {1.0, 0.25};
  return p;
}

TEST(KvProfileBuilder, MeansOfOuterProducts) {
  std::vector<std::vector<Rows>> rows;
  const KvProfile p = built_profile(&rows);
  EXPECT_EQ(p.tokens, 20);
  EXPECT_EQ(p.n_layers, kLayers);
  EXPECT_EQ(p.n_heads, kHeads);
  EXPECT_EQ(p.n_kv_heads, kKvHeads);
  EXPECT_EQ(p.head_dim, kDim);
  ASSERT_EQ(p.heads.size(), static_cast<size_t>(kLayers * kKvHeads));
  // Direct sums for layer 1, KV head 1 (query heads 2 and 3), entries (3, 11) and (11, 3).
  const int l = 1, g = 1, i = 3, j = 11;
  double qq = 0, kk = 0, vv = 0, km = 0, vm = 0;
  int t_total = 0;
  for (const Rows& r : rows[l]) {
    for (int t = 0; t < r.n; ++t) {
      for (int h = g * 2; h < g * 2 + 2; ++h) {
        const float* q = r.q.data() + (static_cast<size_t>(t) * kHeads + h) * kDim;
        qq += double(q[i]) * q[j];
      }
      const float* k = r.k.data() + (static_cast<size_t>(t) * kKvHeads + g) * kDim;
      const float* v = r.v.data() + (static_cast<size_t>(t) * kKvHeads + g) * kDim;
      kk += double(k[i]) * k[j];
      vv += double(v[i]) * v[j];
      km += k[i];
      vm += v[j];
    }
    t_total += r.n;
  }
  const KvProfile::Head& h = p.head(l, g);
  EXPECT_NEAR(h.qq[i * kDim + j], qq / (2.0 * t_total), 1e-12);
  EXPECT_NEAR(h.kk[i * kDim + j], kk / t_total, 1e-12);
  EXPECT_NEAR(h.vv[i * kDim + j], vv / t_total, 1e-12);
  EXPECT_EQ(h.qq[j * kDim + i], h.qq[i * kDim + j]) << "symmetric";
  EXPECT_EQ(h.kk[j * kDim + i], h.kk[i * kDim + j]);
  EXPECT_NEAR(h.k_mean[i], km / t_total, 1e-12);
  EXPECT_NEAR(h.v_mean[j], vm / t_total, 1e-12);
  // Diagonal of kk: mean of k_i², positive.
  for (int a = 0; a < kDim; ++a) EXPECT_GT(h.kk[a * kDim + a], 0.0);
}

TEST(KvProfileBuilder, ErrorsAndIncompleteProfile) {
  EXPECT_THROW(KvProfileBuilder(2, 3, 2, 16), Error);  // heads not a multiple of KV heads
  EXPECT_THROW(KvProfileBuilder(0, 4, 2, 16), Error);
  KvProfileBuilder b(kLayers, kHeads, kKvHeads, kDim);
  Rng rng(1);
  Rows r = random_rows(rng, 3);
  EXPECT_THROW(b.add(kLayers, 3, r.q.data(), r.k.data(), r.v.data()), Error);
  b.add(0, 3, r.q.data(), r.k.data(), r.v.data());
  EXPECT_THROW(b.finish(), Error) << "layer 1 saw no tokens";
  // finish() leaves RoPE and the value weight to the caller: check() rejects it as is.
  const KvProfile p = built_profile();
  EXPECT_THROW(p.check(), Error);
}

TEST(KvProfile, CheckAcceptsCompleteAndNamesBadFields) {
  const KvProfile good = complete_profile();
  EXPECT_NO_THROW(good.check());
  auto expect_bad = [&](auto mutate) {
    KvProfile p = good;
    mutate(p);
    EXPECT_THROW(p.check(), Error);
  };
  expect_bad([](KvProfile& p) { p.rope_partner[0] = 2; });  // not a pairing
  expect_bad([](KvProfile& p) { p.rope_partner.pop_back(); });
  expect_bad([](KvProfile& p) { p.rope_theta.pop_back(); });
  expect_bad([](KvProfile& p) { p.rope_theta[1][3] = NAN; });
  expect_bad([](KvProfile& p) { p.heads.pop_back(); });
  expect_bad([](KvProfile& p) { p.heads[0].kk[5] = INFINITY; });
  expect_bad([](KvProfile& p) { p.heads[1].v_weight.resize(3); });
  expect_bad([](KvProfile& p) { p.k_sensitivity = {1.0}; });
  expect_bad([](KvProfile& p) { p.v_sensitivity[0] = -1; });
  expect_bad([](KvProfile& p) { p.head_dim = 4; });
  // Moments no data can have: a negative mean square, a mean beyond its root mean square.
  expect_bad([](KvProfile& p) { p.heads[0].qq[3 * kDim + 3] = -1; });
  expect_bad([](KvProfile& p) { p.heads[1].v_weight[0] = -1e-3; });
  expect_bad([](KvProfile& p) { p.heads[2].k_mean[4] = 1.01 * std::sqrt(p.heads[2].kk[4 * kDim + 4]); });
  expect_bad([](KvProfile& p) { p.heads[3].v_mean[0] = -1e88; });
  // Unrotated coordinates (partner = itself) are allowed.
  KvProfile p = good;
  p.rope_partner[0] = 0;
  p.rope_partner[1] = 1;
  EXPECT_NO_THROW(p.check());
}

void expect_same(const KvProfile& a, const KvProfile& b) {
  EXPECT_EQ(a.model_hash, b.model_hash);
  EXPECT_EQ(a.model_name, b.model_name);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.rope_partner, b.rope_partner);
  EXPECT_EQ(a.rope_theta, b.rope_theta) << "f64, exact";
  EXPECT_EQ(a.k_sensitivity, b.k_sensitivity);
  EXPECT_EQ(a.v_sensitivity, b.v_sensitivity);
  ASSERT_EQ(a.heads.size(), b.heads.size());
  for (size_t h = 0; h < a.heads.size(); ++h) {
    EXPECT_EQ(a.heads[h].k_mean, b.heads[h].k_mean) << "f64, exact";
    EXPECT_EQ(a.heads[h].v_mean, b.heads[h].v_mean);
    const std::vector<double>* ma[] = {&a.heads[h].qq, &a.heads[h].kk, &a.heads[h].vv, &a.heads[h].v_weight};
    const std::vector<double>* mb[] = {&b.heads[h].qq, &b.heads[h].kk, &b.heads[h].vv, &b.heads[h].v_weight};
    for (int m = 0; m < 4; ++m) {
      ASSERT_EQ(ma[m]->size(), mb[m]->size());
      for (size_t i = 0; i < ma[m]->size(); ++i)  // f32 on disk: exactly the float rounding
        ASSERT_EQ(static_cast<double>(static_cast<float>((*ma[m])[i])), (*mb[m])[i]) << "head " << h << " matrix " << m << " entry " << i;
    }
  }
}

TEST(KvProfileFile, SerializeRoundTrip) {
  const KvProfile p = complete_profile();
  const std::vector<uint8_t> bytes = serialize_profile(p);
  ASSERT_GT(bytes.size(), kHeader);
  EXPECT_EQ(std::memcmp(bytes.data(), "TQPF", 4), 0);
  const KvProfile q = deserialize_profile(bytes);
  expect_same(p, q);
  EXPECT_EQ(serialize_profile(q), bytes) << "a second round trip is byte-identical";
  // Empty sensitivities round-trip as empty.
  KvProfile e = p;
  e.k_sensitivity.clear();
  e.v_sensitivity.clear();
  expect_same(e, deserialize_profile(serialize_profile(e)));
}

TEST(KvProfileFile, SerializeRejectsInvalidProfile) {
  KvProfile p = complete_profile();
  p.rope_partner[0] = 5;
  EXPECT_THROW(serialize_profile(p), Error);
}

TEST(KvProfileFile, EverySingleByteFlipThrows) {
  const std::vector<uint8_t> bytes = serialize_profile(complete_profile());
  Rng rng(99);
  for (int rep = 0; rep < 400; ++rep) {
    std::vector<uint8_t> bad = bytes;
    const size_t at = rep < static_cast<int>(kHeader) ? static_cast<size_t>(rep) : rng.below(static_cast<uint32_t>(bytes.size()));  // header first
    bad[at] ^= static_cast<uint8_t>(1 + rng.below(255));
    EXPECT_THROW(deserialize_profile(bad), Error) << "byte " << at;
  }
}

TEST(KvProfileFile, TruncationAndPaddingThrow) {
  const std::vector<uint8_t> bytes = serialize_profile(complete_profile());
  Rng rng(7);
  std::vector<size_t> lengths = {0, 1, 7, 8, 23, 24, 31, 32, 33, bytes.size() - 1};
  for (int i = 0; i < 200; ++i) lengths.push_back(rng.below(static_cast<uint32_t>(bytes.size())));
  for (size_t n : lengths) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(deserialize_profile(cut), Error) << "length " << n;
  }
  std::vector<uint8_t> padded = bytes;
  padded.push_back(0);
  EXPECT_THROW(deserialize_profile(padded), Error);
}

TEST(KvProfileFile, WrongMagicThrows) {
  std::vector<uint8_t> bytes = serialize_profile(complete_profile());
  for (const char* magic : {"TQPG", "TQKV", "\0\0\0\0"}) {
    std::vector<uint8_t> bad = bytes;
    std::memcpy(bad.data(), magic, 4);
    EXPECT_THROW(deserialize_profile(bad), Error) << magic;
  }
}

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// Payload corruption with the checksum fixed up, so the parser itself sees the damage:
// it must throw tq::Error or return a profile that passes check(), never crash.
TEST(KvProfileFile, ChecksummedCorruptionNeverCrashes) {
  const std::vector<uint8_t> bytes = serialize_profile(complete_profile());
  Rng rng(123);
  int rejected = 0, accepted = 0;
  for (int rep = 0; rep < 400; ++rep) {
    std::vector<uint8_t> bad = bytes;
    const int flips = 1 + static_cast<int>(rng.below(3));
    for (int f = 0; f < flips; ++f) {
      // Bias towards the fixed-size front of the payload (hash, name, shape, counts).
      const size_t span = rep % 2 ? bytes.size() - kHeader : std::min<size_t>(64, bytes.size() - kHeader);
      bad[kHeader + rng.below(static_cast<uint32_t>(span))] ^= static_cast<uint8_t>(1 + rng.below(255));
    }
    const uint64_t sum = fnv1a(bad.data() + kHeader, bad.size() - kHeader);
    std::memcpy(bad.data() + 16, &sum, 8);
    try {
      const KvProfile p = deserialize_profile(bad);
      EXPECT_NO_THROW(p.check());
      ++accepted;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_EQ(rejected + accepted, 400);
  EXPECT_GT(rejected, 0);
}

// Offsets in the payload of complete_profile()'s file (docs/FORMATS.md): hash, name,
// shape, tokens, RoPE partners and angles, then per head the f32 upper triangles of qq,
// kk, vv, v_weight and the f64 means; the two sensitivity lists end it.
constexpr size_t kNameBytes = sizeof("tiny-test-model") - 1;
constexpr size_t kHeadsAt = 8 + 2 + kNameBytes + 16 + 8 + 4 * kDim + 8 * kDim * kLayers;
constexpr size_t kTriangle = kDim * (kDim + 1) / 2;
constexpr size_t kHeadBytes = 4 * kTriangle * 4 + 2 * kDim * 8;

// The loader's message for `bytes` with the payload checksum made right ("" if it loads).
std::string error_with_checksum_fixed(std::vector<uint8_t> bytes) {
  const uint64_t sum = fnv1a(bytes.data() + kHeader, bytes.size() - kHeader);
  std::memcpy(bytes.data() + 16, &sum, 8);
  try {
    deserialize_profile(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The first input profile_load_fuzz hung on (build_calibrated looped for ever): a
// checksum-valid file whose layer-0 query moments have a negative diagonal entry
// (-9.49e29) and whose layer-1 value mean holds -7.89e87, beyond any value an f32 vector
// has. The squares overflowed inside the eigensolver, every layout then had a NaN error
// and the byte allocation searched for a feasible layout without end. Such a file is now
// refused by the loader, naming the field.
TEST(KvProfileFile, FuzzFoundImpossibleMomentsAreRefused) {
  const std::vector<uint8_t> good = serialize_profile(complete_profile());
  ASSERT_EQ(good.size(), kHeader + kHeadsAt + kLayers * kKvHeads * kHeadBytes + 2 * (4 + 8 * kLayers));
  std::vector<uint8_t> bad = good;
  const size_t qq_12_12 = kHeader + kHeadsAt + 4 * (12 * kDim - 12 * 11 / 2);  // row 12 starts at its diagonal
  const float mean_square = -9.49011e29f;
  std::memcpy(bad.data() + qq_12_12, &mean_square, 4);
  const std::string negative = error_with_checksum_fixed(bad);
  EXPECT_NE(negative.find("negative"), std::string::npos) << "message: '" << negative << "'";
  bad = good;
  const size_t last_v_mean_1 = kHeader + kHeadsAt + (kLayers * kKvHeads - 1) * kHeadBytes + 4 * kTriangle * 4 + kDim * 8 + 8;
  const double mean = -7.89169e87;
  std::memcpy(bad.data() + last_v_mean_1, &mean, 8);
  const std::string too_large = error_with_checksum_fixed(bad);
  EXPECT_NE(too_large.find("value mean 1"), std::string::npos) << "message: '" << too_large << "'";
}

TEST(KvProfileFile, SaveLoadThroughFile) {
  test::TempDir tmp;
  const KvProfile p = complete_profile();
  const std::string path = tmp / "model.tqprof";
  save_profile(p, path);
  expect_same(p, load_profile(path));
  // Overwrite (atomic replace) and a damaged file on disk.
  KvProfile p2 = p;
  p2.model_name = "other";
  save_profile(p2, path);
  EXPECT_EQ(load_profile(path).model_name, "other");
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x5a');
  }
  EXPECT_THROW(load_profile(path), Error);
  EXPECT_THROW(load_profile(tmp / "missing.tqprof"), Error);
}

TEST(KvProfileFile, ModelFileHashIsFnv1aOfTheFile) {
  test::TempDir tmp;
  const std::string path = tmp / "blob.bin";
  std::vector<uint8_t> blob(3000);
  Rng rng(4);
  for (uint8_t& b : blob) b = static_cast<uint8_t>(rng.below(256));
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(blob.data()), static_cast<std::streamsize>(blob.size()));
  }
  EXPECT_EQ(model_file_hash(path), fnv1a(blob.data(), blob.size()));
  EXPECT_THROW(model_file_hash(tmp / "nope"), Error);
}

}  // namespace
}  // namespace tq
