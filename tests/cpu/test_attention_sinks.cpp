// Attention sinks (KvCacheConfig::sink_tokens): the first positions of a sequence are kept
// as exact code-space vectors and attention reads those instead of their records.
// attend (fast driver) against attend_reference for f16, q8_0, turbo3, rht3 and a
// calibrated tq3 with 0, 1 and 4 sinks (GQA 4:2, d = 64, 300 tokens in uneven chunks), tq3
// with keys in RoPE frames of 48 positions (blocks of 16: frames cut blocks and chunks),
// tolerance as in test_attention.cpp: relative L2 error per (query, head) row <= 1e-4.
// With every position a sink, attention equals exact float attention on the original K/V.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "attention_test_util.h"
#include "core/calib_test_util.h"
#include "turboquant/attention.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/thread_pool.h"

namespace tq {
namespace {

constexpr int kDim = 64, kKvHeads = 2, kHeads = 4;
constexpr double kTol = 1e-4;

std::shared_ptr<const CalibratedCodecs> calibrated_tq3(int n_layers, int rope_range) {
  static const KvProfile prof = test::random_profile(17, 2, kHeads, kKvHeads, kDim);
  KvProfile p = prof;
  p.n_layers = n_layers;
  p.heads.resize(static_cast<size_t>(n_layers) * kKvHeads);
  p.rope_theta.resize(n_layers);
  CalibrationOptions opt;
  opt.rope_range = rope_range;
  return std::make_shared<const CalibratedCodecs>(build_calibrated(p, *find_preset("tq3"), opt));
}

KvCacheConfig config(const std::string& codec, int sinks, int n_layers = 1, int max_tokens = 320, int rope_range = 0) {
  KvCacheConfig c;
  c.n_layers = n_layers;
  c.n_kv_heads = kKvHeads;
  c.head_dim = kDim;
  c.k_codec = c.v_codec = codec;
  c.block_tokens = 16;
  c.max_tokens = max_tokens;
  c.seed = 5;
  c.sink_tokens = sinks;
  if (find_preset(codec)) c.calibrated = calibrated_tq3(n_layers, rope_range);
  return c;
}

// One sequence filled in uneven chunks; the original K/V are kept.
struct Filled {
  KvCache cache;
  int seq;
  std::vector<float> k, v;  // [token][kv_head][dim]
  Filled(const KvCacheConfig& cfg, const std::vector<int>& chunks, uint64_t seed) : cache(cfg), seq(cache.add_sequence()) {
    Rng rng(seed);
    int total = 0;
    for (int n : chunks) total += n;
    k = test::gaussian(rng, static_cast<size_t>(total) * kKvHeads * kDim);
    v = test::gaussian(rng, k.size());
    for (float& x : k) x += 0.7f;  // a common direction, as real keys have
    int at = 0;
    for (int n : chunks) {
      const size_t off = static_cast<size_t>(at) * kKvHeads * kDim;
      cache.append(0, seq, n, k.data() + off, v.data() + off);
      at += n;
    }
  }
};

struct Param {
  std::string codec;
  int sinks;
  int rope_range = 0;
};

class SinkAttention : public ::testing::TestWithParam<Param> {};

TEST_P(SinkAttention, FastMatchesReference) {
  const Param& prm = GetParam();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Filled f(config(prm.codec, prm.sinks, 1, 320, prm.rope_range), {2, 3, 1, 50, 100, 144}, seed);
  ASSERT_EQ(f.cache.plan().key_frames(0) != nullptr, prm.rope_range > 0);  // 300 tokens; sinks span chunks
  ASSERT_EQ(f.cache.length(0, f.seq), 300);
  EXPECT_EQ(f.cache.sink_tokens(), prm.sinks);
  // The sink store is exactly Codec::to_code of the appended vectors.
  for (int t = 0; t < prm.sinks; ++t)
    for (int h = 0; h < kKvHeads; ++h) {
      const Codec& kc = f.cache.k_codec(0, h);
      const Codec& vc = f.cache.v_codec(0, h);
      std::vector<float> yk(kc.code_dim()), yv(vc.code_dim());
      const size_t off = (static_cast<size_t>(t) * kKvHeads + h) * kDim;
      kc.to_code(f.k.data() + off, yk.data());
      vc.to_code(f.v.data() + off, yv.data());
      const float* sk = f.cache.k_sink(0, f.seq, h, t);
      const float* sv = f.cache.v_sink(0, f.seq, h, t);
      for (int i = 0; i < kc.code_dim(); ++i) ASSERT_EQ(sk[i], yk[i]) << "K sink t=" << t << " h=" << h;
      for (int i = 0; i < vc.code_dim(); ++i) ASSERT_EQ(sv[i], yv[i]) << "V sink t=" << t << " h=" << h;
    }
  Rng rng(seed ^ 0x51);
  ThreadPool pool(2);
  struct Case { int n_q, pos0, window; float softcap; };
  const Case cases[] = {
      {1, 299, 0, 0.f},   // decode
      {8, 120, 0, 0.f},   // prefill chunk
      {6, 0, 0, 0.f},     // queries among the sinks
      {3, 200, 10, 0.f},  // sliding window: sinks out of reach
      {2, 3, 3, 0.f},     // window ending inside the sinks
      {1, 250, 0, 4.f},   // softcap
  };
  for (const Case& c : cases) {
    AttentionParams p;
    p.n_heads = kHeads;
    p.scale = 1.f / std::sqrt(float(kDim));
    p.window = c.window;
    p.softcap = c.softcap;
    const auto q = test::gaussian(rng, static_cast<size_t>(c.n_q) * kHeads * kDim, 2.f);
    std::vector<float> ref(q.size()), out(q.size()), out2(q.size());
    attend_reference(f.cache, 0, f.seq, q.data(), c.n_q, c.pos0, p, ref.data());
    attend(f.cache, 0, f.seq, q.data(), c.n_q, c.pos0, p, out.data());
    EXPECT_LE(test::max_row_rel_error(out, ref, kDim), kTol)
        << prm.codec << " sinks=" << prm.sinks << " n_q=" << c.n_q << " pos0=" << c.pos0 << " window=" << c.window;
    AttendOptions opt;
    opt.path = AttendPath::portable;
    opt.split_tokens = 16;
    attend(f.cache, 0, f.seq, q.data(), c.n_q, c.pos0, p, out2.data(), &pool, opt);
    EXPECT_LE(test::max_row_rel_error(out2, ref, kDim), kTol)
        << "portable split 16, threads: " << prm.codec << " sinks=" << prm.sinks << " n_q=" << c.n_q << " pos0=" << c.pos0;
  }
}

std::vector<Param> params() {
  std::vector<Param> out;
  for (const char* c : {"f16", "q8_0", "turbo3", "rht3", "tq3"})
    for (int s : {0, 1, 4}) out.push_back({c, s});
  for (int s : {0, 1}) out.push_back({"tq3", s, 48});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Codecs, SinkAttention, ::testing::ValuesIn(params()), [](const auto& info) {
  std::string n = info.param.codec + "_sinks" + std::to_string(info.param.sinks);
  if (info.param.rope_range > 0) n += "_frames" + std::to_string(info.param.rope_range);
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

// Exact softmax attention in double on the original (unquantized) K/V.
std::vector<float> exact_attention(const Filled& f, const std::vector<float>& q, int n_q, int pos0, float scale) {
  std::vector<float> out(q.size());
  for (int i = 0; i < n_q; ++i)
    for (int h = 0; h < kHeads; ++h) {
      const int g = h / (kHeads / kKvHeads), pos = pos0 + i;
      const float* qr = q.data() + (static_cast<size_t>(i) * kHeads + h) * kDim;
      std::vector<double> s(pos + 1);
      double mx = -1e300;
      for (int t = 0; t <= pos; ++t) {
        const float* kr = f.k.data() + (static_cast<size_t>(t) * kKvHeads + g) * kDim;
        double d = 0;
        for (int j = 0; j < kDim; ++j) d += double(qr[j]) * kr[j];
        s[t] = d * scale;
        mx = std::max(mx, s[t]);
      }
      double z = 0;
      std::vector<double> o(kDim, 0.0);
      for (int t = 0; t <= pos; ++t) {
        const double w = std::exp(s[t] - mx);
        z += w;
        const float* vr = f.v.data() + (static_cast<size_t>(t) * kKvHeads + g) * kDim;
        for (int j = 0; j < kDim; ++j) o[j] += w * vr[j];
      }
      for (int j = 0; j < kDim; ++j) out[(static_cast<size_t>(i) * kHeads + h) * kDim + j] = static_cast<float>(o[j] / z);
    }
  return out;
}

// Every position a sink: no record is read, so a lossy codec gives exact attention (float
// rounding of the rotation / affine map only): 1e-4 for turbo3 (orthogonal rotation) and
// for tq3 (whitening affine map P, P⁻¹). Measured: turbo3 7e-7, tq3 1.2e-6. tq3 with RoPE
// frames of 16 positions: the 40 sinks are stored turned back by three different frame
// starts, so attention is exact only if each query is turned back like its frame's keys.
TEST(SinkAttentionExact, AllSinksGiveExactAttention) {
  for (const int rope_range : {0, 16})
  for (const std::string codec : {"turbo3", "tq3"}) {
    if (rope_range > 0 && codec != "tq3") continue;
    SCOPED_TRACE("rope_range " + std::to_string(rope_range));
    const double tol = kTol;
    const int n = 40;
    Filled f(config(codec, n, 1, 64, rope_range), {3, 17, 20}, 99);
    Rng rng(3);
    AttentionParams p;
    p.n_heads = kHeads;
    p.scale = 0.125f;
    for (int pos0 : {0, 25}) {
      const int n_q = n - pos0;
      const auto q = test::gaussian(rng, static_cast<size_t>(n_q) * kHeads * kDim);
      const auto want = exact_attention(f, q, n_q, pos0, p.scale);
      std::vector<float> out(q.size()), ref(q.size());
      attend(f.cache, 0, f.seq, q.data(), n_q, pos0, p, out.data());
      attend_reference(f.cache, 0, f.seq, q.data(), n_q, pos0, p, ref.data());
      const double e_fast = test::max_row_rel_error(out, want, kDim), e_ref = test::max_row_rel_error(ref, want, kDim);
      EXPECT_LE(e_fast, tol) << codec << " attend, pos0=" << pos0;
      EXPECT_LE(e_ref, tol) << codec << " attend_reference, pos0=" << pos0;
      RecordProperty(codec + "_pos" + std::to_string(pos0) + "_err_x1e7", static_cast<int>(std::lround(1e7 * std::max(e_fast, e_ref))));
    }
    // Control: the same data without sinks is visibly lossy (3-bit records).
    Filled g(config(codec, 0, 1, 64, rope_range), {3, 17, 20}, 99);
    const auto q = test::gaussian(rng, static_cast<size_t>(kHeads) * kDim);
    std::vector<float> out(q.size());
    attend(g.cache, 0, g.seq, q.data(), 1, n - 1, p, out.data());
    EXPECT_GT(test::max_row_rel_error(out, exact_attention(g, q, 1, n - 1, p.scale), kDim), 1e-3) << codec;
  }
}

TEST(SinkStore, AccessorsThrowOutsideTheSinks) {
  KvCache cache(config("turbo3", 4));
  const int seq = cache.add_sequence();
  Rng rng(1);
  auto k = test::gaussian(rng, 10 * kKvHeads * kDim), v = test::gaussian(rng, k.size());
  cache.append(0, seq, 2, k.data(), v.data());
  EXPECT_NO_THROW(cache.k_sink(0, seq, 1, 1));
  EXPECT_THROW(cache.k_sink(0, seq, 0, 2), Error) << "position not yet appended";
  cache.append(0, seq, 8, k.data(), v.data());
  for (int pos = 0; pos < 4; ++pos)
    for (int h = 0; h < kKvHeads; ++h) {
      EXPECT_NO_THROW(cache.k_sink(0, seq, h, pos));
      EXPECT_NO_THROW(cache.v_sink(0, seq, h, pos));
    }
  for (int pos : {4, 5, 9, 100, -1}) {
    EXPECT_THROW(cache.k_sink(0, seq, 0, pos), Error) << pos;
    EXPECT_THROW(cache.v_sink(0, seq, 0, pos), Error) << pos;
  }
  EXPECT_THROW(cache.k_sink(0, seq, kKvHeads, 0), Error);
  EXPECT_THROW(cache.v_sink(0, seq, -1, 0), Error);
  EXPECT_THROW(cache.k_sink(1, seq, 0, 0), Error);
  EXPECT_THROW(cache.k_sink(0, seq + 1, 0, 0), Error);
  KvCache none(config("f16", 0));
  const int s0 = none.add_sequence();
  none.append(0, s0, 3, k.data(), v.data());
  EXPECT_THROW(none.k_sink(0, s0, 0, 0), Error) << "no sinks configured";
}

TEST(SinkStore, AppendRecordsBelowTheSinksThrows) {
  KvCache cache(config("q8_0", 4));
  const int seq = cache.add_sequence();
  Rng rng(2);
  const int n = 6;
  auto k = test::gaussian(rng, n * kKvHeads * kDim), v = test::gaussian(rng, k.size());
  std::vector<uint8_t> kr(n * kKvHeads * cache.k_record_bytes(0)), vr(n * kKvHeads * cache.v_record_bytes(0));
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < kKvHeads; ++h) {
      const size_t i = static_cast<size_t>(t) * kKvHeads + h;
      cache.k_codec(0, h).encode(k.data() + i * kDim, kr.data() + i * cache.k_record_bytes(0));
      cache.v_codec(0, h).encode(v.data() + i * kDim, vr.data() + i * cache.v_record_bytes(0));
    }
  EXPECT_THROW(cache.append_records(0, seq, 1, kr.data(), vr.data()), Error);
  EXPECT_EQ(cache.length(0, seq), 0) << "the failed call left the cache as it was";
  cache.append(0, seq, 3, k.data(), v.data());
  EXPECT_THROW(cache.append_records(0, seq, 2, kr.data(), vr.data()), Error) << "position 3 is still a sink";
  EXPECT_EQ(cache.length(0, seq), 3);
  cache.append(0, seq, 1, k.data(), v.data());
  EXPECT_NO_THROW(cache.append_records(0, seq, 2, kr.data(), vr.data()));
  EXPECT_EQ(cache.length(0, seq), 6);
  // Without sinks, records may start at position 0.
  KvCache plain(config("q8_0", 0));
  const int s0 = plain.add_sequence();
  EXPECT_NO_THROW(plain.append_records(0, s0, 2, kr.data(), vr.data()));
  EXPECT_EQ(plain.length(0, s0), 2);
}

TEST(SinkStore, SinkBytesCountEveryLayerAndSide) {
  for (int sinks : {0, 1, 4}) {
    KvCacheConfig cfg = config("f16", sinks, 3);
    cfg.layer_codecs[1] = {"rotor3", "turbo3"};  // rotor3 pads 64 to whole 3-chunks
    cfg.layer_codecs[2] = {"q8_0", "rht3"};
    KvCache cache(cfg);
    size_t floats = 0;
    for (int l = 0; l < 3; ++l) floats += static_cast<size_t>(cache.k_codec(l, 0).code_dim() + cache.v_codec(l, 0).code_dim()) * kKvHeads;
    EXPECT_EQ(cache.sink_bytes(), 4 * static_cast<size_t>(sinks) * floats) << "sinks=" << sinks;
    if (sinks == 4) {
      EXPECT_EQ(cache.sink_bytes(), 4u * 4 * (3 * 2 * 64 + (cache.k_codec(1, 0).code_dim() - 64)) * kKvHeads);
    }
  }
  KvCacheConfig bad = config("f16", -1);
  EXPECT_THROW(KvCache{bad}, Error);
}

TEST(SinkStore, RemovedSequenceStartsFresh) {
  KvCache cache(config("turbo3", 2));
  const int a = cache.add_sequence();
  Rng rng(4);
  auto k = test::gaussian(rng, 4 * kKvHeads * kDim), v = test::gaussian(rng, k.size());
  cache.append(0, a, 4, k.data(), v.data());
  cache.remove_sequence(a);
  const int b = cache.add_sequence();
  EXPECT_EQ(b, a);
  EXPECT_THROW(cache.k_sink(0, b, 0, 0), Error);
  cache.append(0, b, 1, k.data() + 2 * kKvHeads * kDim, v.data() + 2 * kKvHeads * kDim);
  std::vector<float> y(cache.k_codec(0, 0).code_dim());
  cache.k_codec(0, 0).to_code(k.data() + 2 * kKvHeads * kDim, y.data());
  const float* s = cache.k_sink(0, b, 0, 0);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(s[i], y[i]);
}

}  // namespace
}  // namespace tq
