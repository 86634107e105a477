// Every quantize-on-write level (avx512, avx2, portable where compiled; the Codec::encode
// fallback for other head dimensions) against the reference Codec::encode, for every codec
// of the table and head_dim 64/128/256, on fresh random inputs: Gaussian vectors, vectors
// with a few large outlier coordinates, tiny vectors (fp16 subnormals) and zero vectors,
// in batches that fill the SIMD lanes and batches that leave some empty. Records must be
// byte-identical up to the documented near-ties (encode_test_util.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "attention_test_util.h"
#include "encode.h"
#include "encode_test_util.h"
#include "turboquant/fp8.h"
#include "turboquant/kv_cache.h"
#include "turboquant/thread_pool.h"

namespace tq {
namespace {

using test::expect_matches;

// n vectors of `dim` floats at stride `stride`: Gaussian, outliers, tiny, zero in turn.
std::vector<float> inputs(Rng& rng, int n, int dim, size_t stride) {
  std::vector<float> x(stride * n, 0.f);
  for (int t = 0; t < n; ++t) {
    float* v = x.data() + stride * t;
    const int kind = t % 4;
    if (kind == 3) continue;  // zero vector
    for (int j = 0; j < dim; ++j) v[j] = static_cast<float>(rng.gaussian()) * (kind == 2 ? 1e-6f : 1.f);
    if (kind == 1)
      for (int k = 0; k < 3; ++k) v[rng.below(dim)] = static_cast<float>(40.0 + 60.0 * rng.uniform()) * (k == 1 ? -1.f : 1.f);
  }
  return x;
}

using Param = test::CodecDim;
class EncodeVsReference : public ::testing::TestWithParam<Param> {};

TEST_P(EncodeVsReference, EveryLevelMatches) {
  const auto& [name, dim] = GetParam();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Rng rng(seed);
  const Codec c = Codec::make(name, dim, rng.next_u64());
  const size_t stride = dim + 3, rec = c.record_bytes();
  for (AttendPath path : {AttendPath::avx512, AttendPath::avx2, AttendPath::portable}) {
    const auto enc = detail::make_record_encoder(c, path);
    int ties = 0;
    for (int n : {1, 5, 8, 16, 37}) {  // one lane, partial and full batches of 8 and 16 lanes
      const auto x = inputs(rng, n, dim, stride);
      std::vector<uint8_t> out(rec * n + 1, 0xa5);
      enc->encode(x.data(), stride, n, out.data(), rec);
      EXPECT_EQ(out.back(), 0xa5) << "wrote past the last record";
      ties += expect_matches(c, x.data(), stride, n, out.data(), rec,
                             name + " d=" + std::to_string(dim) + " path=" + test::path_name(path) + " n=" + std::to_string(n));
    }
    if (ties) std::printf("%s d=%d path=%s: %d records differ at near-ties\n", name.c_str(), dim, test::path_name(path), ties);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, EncodeVsReference, ::testing::ValuesIn(test::all_codecs_and_dims()),
                         test::codec_dim_name);

TEST(Encode, FastLevelsCoverEveryCodec) {
  // At the head dimensions models use, no codec falls back to Codec::encode.
  for (const auto& spec : codec_table())
    for (int d : {64, 128, 256}) {
      const Codec c = Codec::make(spec, d, 1);
      const bool fast = detail::make_portable_record_encoder(c) != nullptr;
      EXPECT_TRUE(fast) << spec.name << " d=" << d;
      if (attend_path_compiled(AttendPath::avx2)) {
        EXPECT_EQ(fast, detail::make_avx2_record_encoder(c) != nullptr) << spec.name;
      }
      if (attend_path_compiled(AttendPath::avx512)) {
        EXPECT_EQ(fast, detail::make_avx512_record_encoder(c) != nullptr) << spec.name;
      }
    }
}

TEST(Encode, OtherDimensionsFallBackToTheReference) {
  Rng rng(test::fresh_seed());
  for (const char* name : {"turbo3", "rht3", "q8_0h", "v3g16"}) {
    const Codec c = Codec::make(name, 48, 5);  // not whole 32-coordinate runs
    EXPECT_EQ(detail::make_portable_record_encoder(c), nullptr) << name;
    const auto x = inputs(rng, 9, 48, 48);
    std::vector<uint8_t> out(c.record_bytes() * 9);
    detail::make_record_encoder(c)->encode(x.data(), 48, 9, out.data(), c.record_bytes());
    expect_matches(c, x.data(), 48, 9, out.data(), c.record_bytes(), name);
  }
}

// KvCache::append splits the new tokens into runs inside blocks; every record it writes
// must be the reference record of its token and head, with and without threads.
TEST(Encode, KvCacheAppendWritesReferenceRecords) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Rng rng(seed);
  ThreadPool pool(3);
  for (const char* name : {"turbo3", "rht4c", "q4_0h", "v3g16", "f16", "turbo2p"})
    for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
      KvCacheConfig cfg;
      cfg.n_layers = 2;
      cfg.n_kv_heads = 3;
      cfg.head_dim = 64;
      cfg.k_codec = name;
      cfg.v_codec = "turbo4";
      cfg.block_tokens = 16;
      cfg.max_tokens = 128;
      cfg.seed = rng.next_u64();
      KvCache cache(cfg);
      const int seq = cache.add_sequence();
      const int H = cfg.n_kv_heads, D = cfg.head_dim;
      int pos = 0;
      for (int n : {5, 20, 1, 40}) {  // runs that start and end inside blocks and span several
        const auto k = inputs(rng, n * H, D, D), v = inputs(rng, n * H, D, D);
        cache.append(1, seq, n, k.data(), v.data(), tp);
        for (int t = 0; t < n; ++t)
          for (int h = 0; h < H; ++h) {
            const size_t src = (static_cast<size_t>(t) * H + h) * D;
            const std::string what = std::string(name) + " pos " + std::to_string(pos + t) + " head " + std::to_string(h);
            expect_matches(cache.k_codec(1, h), k.data() + src, 0, 1, cache.k_record(1, seq, h, pos + t), 0, "K " + what);
            expect_matches(cache.v_codec(1, h), v.data() + src, 0, 1, cache.v_record(1, seq, h, pos + t), 0, "V " + what);
          }
        pos += n;
      }
      EXPECT_EQ(cache.length(1, seq), pos);
    }
}

// fp8's lane E4M3 conversion on inputs random vectors rarely hit: every code's value, every
// midpoint between neighbouring codes (ties to even) and the floats beside it, both signs,
// at a scale of 1 (a coordinate of 448 fixes it), below the smallest fp16 scale and near
// the largest.
TEST(Encode, Fp8EveryCodeAndTieOnEveryLevel) {
  std::vector<float> values;
  for (int c = 0; c < 256; ++c)
    if ((c & 0x7f) != 0x7f) values.push_back(e4m3_to_float(static_cast<uint8_t>(c)));
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = e4m3_to_float(c), hi = e4m3_to_float(c + 1), mid = lo + (hi - lo) / 2;
    for (float x : {mid, std::nextafter(mid, 0.f), std::nextafter(mid, 1e9f)}) {
      values.push_back(x);
      values.push_back(-x);
    }
  }
  const int dim = 256;
  std::vector<float> x;
  for (float scale : {1.f, std::ldexp(1.f, -30), std::ldexp(1.f, 15)})
    for (size_t i0 = 0; i0 < values.size(); i0 += dim - 1) {
      x.push_back(448.f * scale);
      for (int i = 1; i < dim; ++i) x.push_back(i0 + i - 1 < values.size() ? values[i0 + i - 1] * scale : 0.f);
    }
  const int n = static_cast<int>(x.size() / dim);
  const Codec c = Codec::make("fp8", dim);
  for (AttendPath path : {AttendPath::avx512, AttendPath::avx2, AttendPath::portable}) {
    std::vector<uint8_t> out(c.record_bytes() * n);
    detail::make_record_encoder(c, path)->encode(x.data(), dim, n, out.data(), c.record_bytes());
    EXPECT_EQ(expect_matches(c, x.data(), dim, n, out.data(), c.record_bytes(), test::path_name(path)), 0);
  }
}

}  // namespace
}  // namespace tq
