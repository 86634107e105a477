// Every quantize-on-write level (avx512, avx2, portable where compiled; the Codec::encode
// fallback for other head dimensions) against the reference Codec::encode, for every codec
// of the table and head_dim 64/128/256, on fresh random inputs: Gaussian vectors, vectors
// with a few large outlier coordinates, tiny vectors (fp16 subnormals) and zero vectors,
// in batches that fill the SIMD lanes and batches that leave some empty.
//
// Records must be byte-identical, except at documented near-ties. The fast encoders run
// the reference's float operations in the reference's order, so on this compiler every
// record is expected to match; a compiler that contracts the reference's a*b + c
// differently may move the rotated coordinates by a few ulps. A differing record is
// accepted only if
//   - every differing code is one step away from the reference's, and the reference's
//     value lies within kTieTol of the boundary between the two codes (mse: |y_i/‖y‖ −
//     boundary| <= kTieTol; q8_0/q4_0/group: the scaled value within kTieTol·max(1, |s|)
//     of the rounding point), and
//   - every fp16 field (norms, residual norms, block scales, group min/step) is at most
//     one fp16 value away (the fields round float values that moved by a few ulps).
// The prod codecs' sign bits may differ only where the reference's projection S_j·r lies
// within kTieTol·‖S_j‖·‖r‖ of zero.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "attention_test_util.h"
#include "encode.h"
#include "turboquant/blocks.h"
#include "turboquant/half.h"
#include "turboquant/kv_cache.h"
#include "turboquant/packing.h"
#include "turboquant/quantizers.h"
#include "turboquant/thread_pool.h"

namespace tq {
namespace {

constexpr double kTieTol = 1e-5;

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

// fp16 fields at most one representable value apart (bit patterns mapped to a line, so
// that -0 and +0 are the same point and subnormals count like normals).
bool half_close(const uint8_t* a, const uint8_t* b) {
  auto line = [](const uint8_t* p) {
    const int h = p[0] | (p[1] << 8);
    return (h & 0x8000) ? -(h & 0x7fff) : h;
  };
  return std::abs(line(a) - line(b)) <= 1;
}

// Distance of s to the nearest point of the grid offset + k (k integer), relative to max(1, |s|).
double off_grid(double s, double offset) {
  const double r = s - offset;
  return std::fabs(r - std::nearbyint(r)) / std::max(1.0, std::fabs(s));
}

// Empty when `fast` is the reference record `ref` of x up to the near-ties above, else why not.
std::string near_tie_failure(const Codec& c, const float* x, const uint8_t* ref, const uint8_t* fast) {
  const int D = c.code_dim();
  std::vector<float> y(D);
  c.rotation().forward(x, y.data());
  const Quantizer& q = c.quantizer();
  auto code_step = [](int a, int b) { return std::abs(a - b) == 1; };
  switch (c.spec().quant) {
    case QuantKind::f16: return "record differs (no tolerance for f16)";
    case QuantKind::q8_0:
    case QuantKind::q4_0: {
      const bool q8 = c.spec().quant == QuantKind::q8_0;
      const size_t bb = q8 ? sizeof(blocks::BlockQ8_0) : sizeof(blocks::BlockQ4_0);
      for (int bl = 0; bl < D / 32; ++bl) {
        const uint8_t *r = ref + bb * bl, *f = fast + bb * bl;
        if (!half_close(f, r)) return "block scale " + std::to_string(bl) + " differs";
        double amax = 0, m = 0;
        for (int j = 0; j < 32; ++j)
          if (std::fabs(y[32 * bl + j]) > amax) amax = std::fabs(m = y[32 * bl + j]);
        for (int j = 0; j < 32; ++j) {
          int a, b;
          if (q8) {
            a = static_cast<int8_t>(r[2 + j]), b = static_cast<int8_t>(f[2 + j]);
          } else {
            const int sh = j < 16 ? 0 : 4, byte = 2 + j % 16;
            a = (r[byte] >> sh) & 15, b = (f[byte] >> sh) & 15;
          }
          if (a == b) continue;
          // q8_0 rounds y·127/amax at half-integers; q4_0 truncates y·(−8/m) + 8.5 at integers.
          const double s = q8 ? y[32 * bl + j] * 127.0 / amax : y[32 * bl + j] * (-8.0 / m) + 8.5;
          if (!code_step(a, b) || off_grid(s, q8 ? 0.5 : 0.0) > kTieTol)
            return "code " + std::to_string(32 * bl + j) + ": " + std::to_string(a) + " vs " + std::to_string(b) +
                   " at scaled value " + std::to_string(s);
        }
      }
      return "";
    }
    case QuantKind::mse: {
      const auto& mq = static_cast<const MseQuantizer&>(q);
      if (!half_close(fast, ref)) return "norm differs";
      std::vector<uint8_t> ia(D), ib(D);
      mq.indices(ref, ia.data());
      mq.indices(fast, ib.data());
      double n2 = 0;
      for (float v : y) n2 += double(v) * v;
      for (int i = 0; i < D; ++i) {
        if (ia[i] == ib[i]) continue;
        const Codebook& cb = i < mq.n_hi() ? mq.hi() : mq.lo();
        const double t = y[i] / std::sqrt(n2);
        if (!code_step(ia[i], ib[i]) || std::fabs(t - cb.boundaries[std::min(ia[i], ib[i])]) > kTieTol)
          return "index " + std::to_string(i) + ": " + std::to_string(ia[i]) + " vs " + std::to_string(ib[i]) +
                 " at y/|y| = " + std::to_string(t);
      }
      return "";
    }
    case QuantKind::grouped: return "calibrated codecs have no lane encoder";
    case QuantKind::prod: {
      const auto& pq = static_cast<const ProdQuantizer&>(q);
      if (!half_close(fast, ref) || !half_close(fast + 2, ref + 2)) return "norm or residual norm differs";
      double n2 = 0;
      for (float v : y) n2 += double(v) * v;
      const Codebook& cb = pq.codebook();
      std::vector<double> r(D);  // the reference's residual u − c[idx]
      double r2 = 0;
      for (int i = 0; i < D; ++i) {
        const double t = y[i] / std::sqrt(n2);
        const int a = read_code(ref + pq.code_offset(), i, pq.mse_bits());
        const int b = read_code(fast + pq.code_offset(), i, pq.mse_bits());
        if (a != b && (!code_step(a, b) || std::fabs(t - cb.boundaries[std::min(a, b)]) > kTieTol))
          return "index " + std::to_string(i) + ": " + std::to_string(a) + " vs " + std::to_string(b);
        r[i] = t - cb.levels[a];
        r2 += r[i] * r[i];
      }
      // A sign of S r may differ only where the projection is within kTieTol·‖S_j‖·‖r‖ of 0.
      const float* S = pq.qjl_matrix().data();
      for (int j = 0; j < D; ++j) {
        if (read_code(ref + pq.sign_offset(), j, 1) == read_code(fast + pq.sign_offset(), j, 1)) continue;
        double s = 0, row2 = 0;
        for (int i = 0; i < D; ++i) {
          s += double(S[size_t(j) * D + i]) * r[i];
          row2 += double(S[size_t(j) * D + i]) * S[size_t(j) * D + i];
        }
        if (std::fabs(s) > kTieTol * std::sqrt(row2 * r2)) return "sign " + std::to_string(j) + " at S r = " + std::to_string(s);
      }
      return "";
    }
    case QuantKind::group: {
      const auto& gq = static_cast<const GroupQuantizer&>(q);
      const int G = gq.group();
      for (int g = 0; g < D / G; ++g) {
        const uint8_t *r = ref + gq.group_bytes() * g, *f = fast + gq.group_bytes() * g;
        if (!half_close(f, r) || !half_close(f + 2, r + 2)) return "group " + std::to_string(g) + " min/step differ";
        const double mn = load_half(r), step = load_half(r + 2);
        for (int i = 0; i < G; ++i) {
          const int a = read_code(r + 4, i, gq.bits()), b = read_code(f + 4, i, gq.bits());
          if (a == b) continue;
          const double s = (y[G * g + i] - mn) / step;
          if (!code_step(a, b) || off_grid(s, 0.5) > kTieTol)
            return "code " + std::to_string(G * g + i) + ": " + std::to_string(a) + " vs " + std::to_string(b);
        }
      }
      return "";
    }
  }
  return "unknown quantizer";
}

// Encodes x with the reference and checks `fast` record by record; returns near-tie count.
int expect_matches(const Codec& c, const float* x, size_t stride, int n, const uint8_t* fast, size_t out_stride,
                   const std::string& what) {
  std::vector<uint8_t> ref(c.record_bytes());
  int ties = 0;
  for (int t = 0; t < n; ++t) {
    c.encode(x + stride * t, ref.data());
    const uint8_t* f = fast + out_stride * t;
    if (std::memcmp(ref.data(), f, ref.size()) == 0) continue;
    const std::string why = near_tie_failure(c, x + stride * t, ref.data(), f);
    EXPECT_EQ(why, "") << what << " vector " << t << " (input kind " << t % 4 << ")";
    ++ties;
  }
  return ties;
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

}  // namespace
}  // namespace tq
