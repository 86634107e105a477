// Range (docs/FORMATS.md, "Range") on the GPU against the CPU reference, for every codec
// the kernels implement and head_dim 64/128/256: keys and values scaled to 1e5 and 1e30
// (fp16 fields overflow), 1e-40 (float subnormals) and zero give the CPU's records byte
// for byte, decode to finite values (tiny and zero vectors to zeros), and count the CPU's
// saturated vectors. A NaN or Inf input is refused with the CPU cache's message naming
// layer, KV head, token, K/V and coordinate; its slot is not written, the others are.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

#include "cuda_test_util.h"
#include "turboquant/range.h"

namespace tq::cuda {
namespace {

using testing::DeviceBuffer;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Keys and values [n][H][d] of one side each, a write of them through quantize_on_write
// into slots 0..n-1 (or `slots`), and the records read back.
struct Write {
  const KvCacheConfig& cfg;
  int layer = 0, n = 0;
  std::vector<float> x[2];
  std::vector<int32_t> slots;
  QuantizeKernel kernel = QuantizeKernel::auto_;

  Write(const KvCacheConfig& c, int layer_, int n_) : cfg(c), layer(layer_), n(n_), slots(n_) {
    for (auto& side : x) side.assign(static_cast<size_t>(n) * c.n_kv_heads * c.head_dim, 0.f);
    std::iota(slots.begin(), slots.end(), 0);
  }
  float* vec(int side, int token, int head) {
    return &x[side][(static_cast<size_t>(token) * cfg.n_kv_heads + head) * cfg.head_dim];
  }
  void run(DeviceKvCache& cache, bool check = true) const {
    DeviceBuffer<float> k(x[0]), v(x[1]);
    DeviceBuffer<int32_t> s(slots);
    QuantizeParams p;
    p.layer = layer;
    p.keys = k.get();
    p.values = v.get();
    p.n_tokens = n;
    p.slots = s.get();
    p.check = check;
    p.kernel = kernel;
    quantize_on_write(cache, p);
    testing::check(cudaDeviceSynchronize(), "quantize_on_write");
  }
  // Record of (side, token, head) in a downloaded pool.
  const uint8_t* record(const DeviceKvCache& cache, const std::vector<uint8_t>& pool, int side, int token,
                        int head) const {
    const int32_t slot = slots[token];
    const size_t rb = cache.record_bytes(layer, side);
    return &pool[(slot / cfg.block_tokens) * cache.block_bytes(layer, side) +
                 (static_cast<size_t>(head) * cfg.block_tokens + slot % cfg.block_tokens) * rb];
  }
  std::vector<uint8_t> pool(const DeviceKvCache& cache, int side) const {
    std::vector<uint8_t> out(cache.pool_bytes(layer, side));
    cache.download_pool(layer, side, out.data(), out.size());
    return out;
  }
};

class CudaRange : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaRange, EveryScaleMatchesTheCpuReference) {
  TQ_REQUIRE_GPU();
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal;
  for (int dim : testing::kHeadDims)
    for (float scale : {1e5f, 1e30f, 1e-40f, 0.f}) {
      SCOPED_TRACE(GetParam() + " d=" + std::to_string(dim) + " scale " + std::to_string(scale));
      const KvCacheConfig cfg = testing::cache_config(GetParam(), GetParam(), dim, 2, 16, 64, 1, 3);
      DeviceKvCache cache(cfg);
      Write w(cfg, 0, 24);
      for (auto& side : w.x)
        for (float& e : side) e = scale * normal(rng);
      uint64_t cpu_saturated = 0;  // the CPU reference, record by record
      std::vector<std::vector<uint8_t>> want;
      for (int side = 0; side < 2; ++side)
        for (int t = 0; t < w.n; ++t)
          for (int h = 0; h < cfg.n_kv_heads; ++h) {
            want.emplace_back(cache.record_bytes(0, side));
            const uint64_t before = range_events().saturated;
            cache.codec(0, h, side).encode(w.vec(side, t, h), want.back().data());
            cpu_saturated += range_events().saturated - before;
          }
      const uint64_t before = range_events().saturated;
      w.run(cache);
      EXPECT_EQ(range_events().saturated - before, cpu_saturated) << "the GPU counts other vectors";
      if (scale >= 1e30f) {
        EXPECT_EQ(cpu_saturated, static_cast<uint64_t>(2 * w.n * cfg.n_kv_heads));
      }
      if (scale < 1e-30f) {
        EXPECT_EQ(cpu_saturated, 0u);
      }

      size_t i = 0;
      std::vector<float> out(dim);
      for (int side = 0; side < 2; ++side) {
        const auto pool = w.pool(cache, side);
        for (int t = 0; t < w.n; ++t)
          for (int h = 0; h < cfg.n_kv_heads; ++h, ++i) {
            const uint8_t* got = w.record(cache, pool, side, t, h);
            EXPECT_EQ(std::memcmp(got, want[i].data(), want[i].size()), 0) << "side " << side << " token " << t;
            cache.codec(0, h, side).decode(got, out.data());
            for (float e : out) {
              ASSERT_TRUE(std::isfinite(e)) << "side " << side << " token " << t;
              if (scale < 1e-30f) {
                ASSERT_EQ(e, 0.f) << "side " << side << " token " << t;
              }
            }
          }
      }
    }
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, CudaRange, ::testing::ValuesIn(testing::supported_codecs()),
                         testing::CodecTestName());

// The error of one write, or "" when it did not throw.
std::string write_error(DeviceKvCache& cache, const Write& w, bool check = true) {
  try {
    w.run(cache, check);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Every kernel kind: dense rotation (tiled), Hadamard (warp), unrotated (warp, no staging),
// group codec (tiled).
constexpr const char* kKernelKinds[] = {"turbo3", "rht3", "q8_0", "v3g32"};

TEST(CudaRangeErrors, NonFiniteInputIsRefusedNamingLayerHeadAndToken) {
  TQ_REQUIRE_GPU();
  const struct {
    float bad;
    const char* name;
  } cases[] = {{std::numeric_limits<float>::quiet_NaN(), "NaN"}, {kInf, "+Inf"}, {-kInf, "-Inf"}};
  for (const char* codec : kKernelKinds)
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(codec) + " " + c.name);
      const KvCacheConfig cfg = testing::cache_config(codec, codec, 128, 2, 16, 64, 3, 5);
      DeviceKvCache cache(cfg);
      Write w(cfg, 2, 6);
      std::mt19937_64 rng(5);
      std::normal_distribution<float> normal;
      for (auto& side : w.x)
        for (float& e : side) e = normal(rng);
      w.vec(1, 3, 1)[70] = c.bad;  // V, token 3, head 1: the first in position order
      w.vec(0, 4, 0)[2] = c.bad;   // K, token 4, head 0
      w.slots[5] = -1;
      w.vec(0, 5, 1)[0] = c.bad;   // a skipped token is not looked at
      const uint64_t before = range_events().nonfinite;
      EXPECT_EQ(write_error(cache, w),
                std::string("quantize_on_write: layer 2, KV head 1, token 3 of the write: V coordinate 70 is ") +
                    c.name + " (non-finite keys and values are refused); refused vectors were not written");
      EXPECT_EQ(range_events().nonfinite - before, 2u);
      // The refused records' slots keep their zeros; every other record is the CPU's.
      for (int side = 0; side < 2; ++side) {
        const auto pool = w.pool(cache, side);
        std::vector<uint8_t> want(cache.record_bytes(2, side)), zeros(want.size(), 0);
        for (int t = 0; t < 5; ++t)
          for (int h = 0; h < cfg.n_kv_heads; ++h) {
            const uint8_t* got = w.record(cache, pool, side, t, h);
            const bool refused = (side == 1 && t == 3 && h == 1) || (side == 0 && t == 4 && h == 0);
            if (!refused) cache.codec(2, h, side).encode(w.vec(side, t, h), want.data());
            EXPECT_EQ(std::memcmp(got, refused ? zeros.data() : want.data(), want.size()), 0)
                << "side " << side << " token " << t << " head " << h;
          }
      }
      EXPECT_EQ(write_error(cache, Write(cfg, 2, 1)), "") << "the status was reset";
    }
}

// A write with more CTAs than SMs: the warp kernel's lane blocks (several tokens per warp)
// find the token's first bad coordinate, for rht across the permutation, and name its
// value with its own sign.
TEST(CudaRangeErrors, LaneBlockWritesRefuseNonFiniteInputs) {
  TQ_REQUIRE_GPU();
  const int n = testing::tokens_for_lane_block_writes(8) + 8;
  for (const char* codec : {"rht3", "q8_0", "sq3"}) {
    SCOPED_TRACE(codec);
    const KvCacheConfig cfg = testing::cache_config(codec, codec, 128, 8, 16, n + 16, 1, 9);
    DeviceKvCache cache(cfg);
    Write w(cfg, 0, n);
    std::mt19937_64 rng(9);
    std::normal_distribution<float> normal;
    for (auto& side : w.x)
      for (float& e : side) e = normal(rng);
    const int t = n / 2;
    w.vec(1, t, 5)[100] = -kInf;  // V, head 5: two bad coordinates, the first named
    w.vec(1, t, 5)[70] = -kInf;
    w.vec(0, t + 1, 0)[3] = std::numeric_limits<float>::quiet_NaN();
    const uint64_t before = range_events().nonfinite;
    EXPECT_EQ(write_error(cache, w), "quantize_on_write: layer 0, KV head 5, token " + std::to_string(t) +
                                         " of the write: V coordinate 70 is -Inf (non-finite keys and values are "
                                         "refused); refused vectors were not written");
    EXPECT_EQ(range_events().nonfinite - before, 2u);
    const auto pool = w.pool(cache, 1);
    std::vector<uint8_t> want(cache.record_bytes(0, 1)), zeros(want.size(), 0);
    EXPECT_EQ(std::memcmp(w.record(cache, pool, 1, t, 5), zeros.data(), want.size()), 0) << "refused: not written";
    cache.codec(0, 4, 1).encode(w.vec(1, t, 4), want.data());
    EXPECT_EQ(std::memcmp(w.record(cache, pool, 1, t, 4), want.data(), want.size()), 0) << "its neighbour is";
  }
}

// The tensor-core kernel (dense rotations, mse codes) finds each tile's bad rows in its
// fragment scan: the token's first bad coordinate is named, skipped slots are not looked
// at, refused records stay unwritten and their neighbours are the reference's up to the
// near-tie contract; inputs of 1e30 saturate every norm, as on the CPU.
TEST(CudaRangeErrors, TensorCoreWritesRefuseNonFiniteInputs) {
  TQ_REQUIRE_GPU();
  for (const char* codec : {"turbo3", "turbo4"})
    for (int dim : {64, 128}) {
      SCOPED_TRACE(std::string(codec) + " d=" + std::to_string(dim));
      const int n = 40;
      const KvCacheConfig cfg = testing::cache_config(codec, codec, dim, 2, 16, n + 16, 1, 13);
      DeviceKvCache cache(cfg);
      Write w(cfg, 0, n);
      w.kernel = QuantizeKernel::tensor;
      std::mt19937_64 rng(13);
      std::normal_distribution<float> normal;
      for (auto& side : w.x)
        for (float& e : side) e = normal(rng);
      w.vec(1, 20, 1)[dim - 1] = std::numeric_limits<float>::quiet_NaN();  // V, token 20, head 1
      w.vec(1, 20, 1)[37] = -kInf;                                          // its first bad coordinate
      w.vec(0, 21, 0)[3] = kInf;
      w.slots[22] = -1;
      w.vec(0, 22, 1)[0] = kInf;  // a skipped token is not looked at
      const uint64_t before = range_events().nonfinite;
      EXPECT_EQ(write_error(cache, w), "quantize_on_write: layer 0, KV head 1, token 20 of the write: V coordinate 37 "
                                       "is -Inf (non-finite keys and values are refused); refused vectors were not "
                                       "written");
      EXPECT_EQ(range_events().nonfinite - before, 2u);
      const auto pool = w.pool(cache, 1);
      std::vector<uint8_t> zeros(cache.record_bytes(0, 1), 0);
      EXPECT_EQ(std::memcmp(w.record(cache, pool, 1, 20, 1), zeros.data(), zeros.size()), 0) << "refused: not written";
      // Its neighbour decodes as the reference's record (a near-tie moves a code by one level).
      std::vector<uint8_t> want(zeros.size());
      cache.codec(0, 0, 1).encode(w.vec(1, 20, 0), want.data());
      std::vector<float> got_x(dim), want_x(dim);
      cache.codec(0, 0, 1).decode(w.record(cache, pool, 1, 20, 0), got_x.data());
      cache.codec(0, 0, 1).decode(want.data(), want_x.data());
      double diff = 0, norm = 0;
      for (int i = 0; i < dim; ++i) diff += std::pow(got_x[i] - want_x[i], 2.0), norm += std::pow(want_x[i], 2.0);
      EXPECT_LT(std::sqrt(diff / norm), 0.2) << "its neighbour is written";

      Write huge(cfg, 0, n);
      huge.kernel = QuantizeKernel::tensor;
      for (auto& side : huge.x)
        for (float& e : side) e = 1e30f * normal(rng);
      const uint64_t saturated = range_events().saturated;
      EXPECT_EQ(write_error(cache, huge), "");
      EXPECT_EQ(range_events().saturated - saturated, static_cast<uint64_t>(2 * n * cfg.n_kv_heads));
    }
}

TEST(CudaRangeErrors, UncheckedWritesReportAtCheckWrites) {
  TQ_REQUIRE_GPU();
  for (const char* codec : kKernelKinds) {
    SCOPED_TRACE(codec);
    const KvCacheConfig cfg = testing::cache_config(codec, codec, 64, 2, 16, 64, 2, 7);
    DeviceKvCache cache(cfg);
    Write huge(cfg, 0, 3), bad(cfg, 1, 2);
    for (auto& side : huge.x)
      for (float& e : side) e = 1e30f;
    bad.vec(0, 1, 1)[9] = -kInf;
    const RangeEvents before = range_events();
    EXPECT_EQ(write_error(cache, huge, false), "");
    EXPECT_EQ(write_error(cache, bad, false), "") << "an unchecked write does not wait or throw";
    try {
      cache.check_writes();
      ADD_FAILURE() << "check_writes did not report the refused input";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()),
                "DeviceKvCache::check_writes: layer 1, KV head 1, token 1 of the write: K coordinate 9 is -Inf "
                "(non-finite keys and values are refused); refused vectors were not written");
    }
    EXPECT_EQ(range_events().saturated - before.saturated, 3u * 2 * 2);
    EXPECT_EQ(range_events().nonfinite - before.nonfinite, 1u);
    EXPECT_NO_THROW(cache.check_writes()) << "reported once";
  }
}

}  // namespace
}  // namespace tq::cuda
