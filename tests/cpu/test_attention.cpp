// Every fast path (best = SIMD where compiled, portable = plain C++) against
// attend_reference, for every codec of the table and head_dim 64/128/256, on fresh random
// inputs: GQA 4:1 and 3:1, causal, sliding window + softcap, prefill chunk and single query,
// two ragged sequences sharing the pool, split-K forced and automatic, with and without
// threads. Tolerance: relative L2 error per (query, head) row <= 1e-4 (the paths differ
// only in summation order, the folded score scale and exp rounding; a wrong code, level
// or mask gives errors of order 1e-2 or more).
#include <gtest/gtest.h>

#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "attention_test_util.h"
#include "turboquant/attention.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/thread_pool.h"

namespace tq {
namespace {

constexpr double kTol = 1e-4;

struct RaggedCache {
  KvCache cache;
  int seq_a, seq_b;
  Rng rng;
  RaggedCache(const std::string& codec, int dim, uint64_t seed, int block_tokens = 16)
      : cache(config(codec, dim, block_tokens)), rng(seed) {
    seq_a = cache.add_sequence();
    seq_b = cache.add_sequence();
    // Interleaved appends so the two block tables interleave in the pool.
    fill(seq_a, 20);
    fill(seq_b, 9);
    fill(seq_a, 1);
    fill(seq_b, 25);
    fill(seq_a, 24);  // seq_a: 45 tokens, seq_b: 34
  }
  static KvCacheConfig config(const std::string& codec, int dim, int block_tokens) {
    KvCacheConfig c;
    c.n_layers = 1;
    c.n_kv_heads = 2;
    c.head_dim = dim;
    c.k_codec = codec;
    c.v_codec = codec;
    c.block_tokens = block_tokens;
    c.max_tokens = 96;
    c.seed = 7;
    return c;
  }
  void fill(int seq, int n) {
    const size_t count = static_cast<size_t>(n) * 2 * cache.config().head_dim;
    auto k = test::gaussian(rng, count), v = test::gaussian(rng, count);
    cache.append(0, seq, n, k.data(), v.data());
  }
};

using Param = test::CodecDim;
class AttentionVsReference : public ::testing::TestWithParam<Param> {};

TEST_P(AttentionVsReference, AllPathsMatch) {
  const auto& [codec, dim] = GetParam();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  RaggedCache s(codec, dim, seed);
  ThreadPool pool(3);
  struct Case { int seq, n_q, pos0, window; float softcap; };
  const Case cases[] = {
      {s.seq_a, 1, 44, 0, 0.f},    // decode
      {s.seq_a, 12, 33, 0, 0.f},   // prefill chunk
      {s.seq_b, 5, 29, 10, 0.f},   // sliding window
      {s.seq_b, 1, 33, 0, 5.f},    // softcap
      {s.seq_a, 3, 0, 2, 0.f},     // first positions, tiny window
  };
  for (int i = 0; i < 2 * static_cast<int>(std::size(cases)); ++i) {
    const Case& c = cases[i / 2];
    const int n_heads = i % 2 ? 6 : 8;  // GQA 4:1 and 3:1 (SmolLM2's: three rows per read)
    AttentionParams p;
    p.n_heads = n_heads;
    p.scale = 1.f / std::sqrt(static_cast<float>(dim));
    p.window = c.window;
    p.softcap = c.softcap;
    auto q = test::gaussian(s.rng, static_cast<size_t>(c.n_q) * p.n_heads * dim, 2.f);
    const size_t n_out = q.size();
    std::vector<float> ref(n_out), out(n_out);
    attend_reference(s.cache, 0, c.seq, q.data(), c.n_q, c.pos0, p, ref.data());
    for (AttendPath path : {AttendPath::avx512, AttendPath::avx2, AttendPath::portable})
      for (int split : {0, 16, 32})
        for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
          std::fill(out.begin(), out.end(), 0.f);
          AttendOptions opt;
          opt.path = path;
          opt.split_tokens = split;
          attend(s.cache, 0, c.seq, q.data(), c.n_q, c.pos0, p, out.data(), tp, opt);
          EXPECT_LE(test::max_row_rel_error(out, ref, dim), kTol)
              << codec << " d=" << dim << " path=" << test::path_name(path)
              << " split=" << split << " threads=" << (tp ? 3 : 1) << " heads=" << n_heads << " n_q=" << c.n_q
              << " pos0=" << c.pos0
              << " window=" << c.window << " softcap=" << c.softcap;
        }
  }
}

TEST(Attention, ReportsCompiledPaths) {
  // Not an assertion on the machine, a record in the log of which kernels were tested.
  std::printf("attend kernels compiled: avx512=%d avx2=%d\n", attend_path_compiled(AttendPath::avx512),
              attend_path_compiled(AttendPath::avx2));
  EXPECT_TRUE(attend_path_compiled(AttendPath::portable));
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, AttentionVsReference, ::testing::ValuesIn(test::all_codecs_and_dims()),
                         test::codec_dim_name);

// The reference itself against a direct softmax over decoded keys and values (f16
// decodes almost exactly, so this checks masking, GQA mapping and normalization).
TEST(AttentionReference, MatchesDirectSoftmaxOnF16) {
  const int dim = 64;
  RaggedCache s("f16", dim, 11);
  AttentionParams p;
  p.n_heads = 8;
  p.scale = 0.125f;
  p.window = 7;
  auto q = test::gaussian(s.rng, 3 * 8 * dim);
  std::vector<float> ref(q.size());
  attend_reference(s.cache, 0, s.seq_b, q.data(), 3, 30, p, ref.data());
  std::vector<float> kf(dim), vf(dim);
  for (int i = 0; i < 3; ++i)
    for (int h = 0; h < 8; ++h) {
      const int pos = 30 + i, g = h / 4;
      std::vector<double> sc;
      for (int t = pos - 6; t <= pos; ++t) {
        s.cache.k_codec(0, g).decode(s.cache.k_record(0, s.seq_b, g, t), kf.data());
        double d = 0;
        for (int j = 0; j < dim; ++j) d += double(q[(i * 8 + h) * dim + j]) * kf[j];
        sc.push_back(d * p.scale);
      }
      const double mx = *std::max_element(sc.begin(), sc.end());
      double z = 0;
      std::vector<double> o(dim, 0);
      for (int t = pos - 6, k = 0; t <= pos; ++t, ++k) {
        const double w = std::exp(sc[k] - mx);
        z += w;
        s.cache.v_codec(0, g).decode(s.cache.v_record(0, s.seq_b, g, t), vf.data());
        for (int j = 0; j < dim; ++j) o[j] += w * vf[j];
      }
      for (int j = 0; j < dim; ++j) EXPECT_NEAR(ref[(i * 8 + h) * dim + j], o[j] / z, 1e-4);
    }
}

TEST(Attention, RejectsBadArguments) {
  RaggedCache s("turbo3", 64, 3);
  AttentionParams p;
  p.n_heads = 8;
  p.scale = 0.125f;
  std::vector<float> q(8 * 64), out(q.size());
  EXPECT_THROW(attend(s.cache, 0, s.seq_a, q.data(), 1, 45, p, out.data()), Error);  // beyond the cache
  EXPECT_THROW(attend(s.cache, 1, s.seq_a, q.data(), 1, 0, p, out.data()), Error);   // no such layer
  EXPECT_THROW(attend(s.cache, 0, 9, q.data(), 1, 0, p, out.data()), Error);         // no such sequence
  AttentionParams bad = p;
  bad.n_heads = 5;  // not a multiple of the 2 KV heads
  EXPECT_THROW(attend(s.cache, 0, s.seq_a, q.data(), 1, 0, bad, out.data()), Error);
  bad = p;
  bad.scale = 0.f;
  EXPECT_THROW(attend_reference(s.cache, 0, s.seq_a, q.data(), 1, 0, bad, out.data()), Error);
}

}  // namespace
}  // namespace tq
