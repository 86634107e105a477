// Quantize-on-write on the GPU against Codec::encode on the CPU, record by record, for
// every supported codec and head_dim 64/128/256, through a scattered slot mapping. The
// kernels follow the reference's arithmetic (rotation.h order, fp16 rounding), so the
// records are expected byte-identical; a record may differ only at a documented tie
// (one code off by one level), and such records must stay below 0.1%.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "cuda_test_util.h"
#include "turboquant/half.h"

namespace tq::cuda {
namespace {

using testing::DeviceBuffer;

struct Outcome {
  size_t records = 0, mismatched = 0;
  double worst_decode_diff = 0;  // relative L2 between the decodes of mismatched records
};

// Fresh random keys and values with per-vector scales from 1e-2 to 1e2, some exact
// zero vectors, and a random slot for every token (some tokens skipped with -1).
Outcome run_quantize(const std::string& codec, int dim, DType dtype, uint64_t seed, int n_tokens = 150) {
  const KvCacheConfig cfg = testing::cache_config(codec, codec, dim, 2, 16, 256, 2, seed);
  DeviceKvCache cache(cfg);
  const int layer = 1, width = cfg.n_kv_heads * dim;

  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> log_scale(-2.f, 2.f);
  std::vector<float> x[2];
  for (auto& side : x) {
    side.resize(static_cast<size_t>(n_tokens) * width);
    for (int v = 0; v < n_tokens * cfg.n_kv_heads; ++v) {
      const float s = (v % 37 == 5) ? 0.f : std::pow(10.f, log_scale(rng));
      for (int i = 0; i < dim; ++i) {
        float e = s * normal(rng);
        if (dtype == DType::f16) e = round_to_half(e);
        side[static_cast<size_t>(v) * dim + i] = e;
      }
    }
  }
  std::vector<int32_t> slots(cache.num_blocks() * cfg.block_tokens);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng);
  slots.resize(n_tokens);
  for (int t = 22; t < n_tokens; t += 23) slots[t] = -1;

  auto to_device = [&](const std::vector<float>& h) {
    if (dtype == DType::f32) {
      auto buf = std::make_unique<DeviceBuffer<uint16_t>>(h.size() * 2);
      testing::check(cudaMemcpy(buf->get(), h.data(), h.size() * 4, cudaMemcpyHostToDevice), "upload");
      return buf;
    }
    std::vector<uint16_t> hh(h.size());
    for (size_t i = 0; i < h.size(); ++i) hh[i] = float_to_half(h[i]);
    return std::make_unique<DeviceBuffer<uint16_t>>(hh);
  };
  auto k_dev = to_device(x[0]), v_dev = to_device(x[1]);
  DeviceBuffer<int32_t> slots_dev(slots);
  QuantizeParams p;
  p.layer = layer;
  p.keys = k_dev->get();
  p.values = v_dev->get();
  p.dtype = dtype;
  p.n_tokens = n_tokens;
  p.slots = slots_dev.get();
  quantize_on_write(cache, p);
  testing::check(cudaDeviceSynchronize(), "quantize_on_write");

  Outcome out;
  for (int side = 0; side < 2; ++side) {
    std::vector<uint8_t> pool(cache.pool_bytes(layer, side));
    cache.download_pool(layer, side, pool.data(), pool.size());
    const size_t rb = cache.record_bytes(layer, side);
    std::vector<uint8_t> want(rb);
    std::vector<float> a(dim), b(dim);
    for (int t = 0; t < n_tokens; ++t) {
      if (slots[t] < 0) continue;
      for (int h = 0; h < cfg.n_kv_heads; ++h) {
        const Codec& c = cache.codec(layer, h, side);
        const float* vec = &x[side][static_cast<size_t>(t) * width + h * dim];
        c.encode(vec, want.data());
        const size_t block = slots[t] / cfg.block_tokens, tok = slots[t] % cfg.block_tokens;
        const uint8_t* got = &pool[block * cache.block_bytes(layer, side) + (h * cfg.block_tokens + tok) * rb];
        ++out.records;
        if (std::memcmp(got, want.data(), rb) == 0) continue;
        ++out.mismatched;
        c.decode(got, a.data());
        c.decode(want.data(), b.data());
        double d2 = 0, n2 = 0;
        for (int i = 0; i < dim; ++i) d2 += double(a[i] - b[i]) * (a[i] - b[i]), n2 += double(b[i]) * b[i];
        out.worst_decode_diff = std::max(out.worst_decode_diff, n2 > 0 ? std::sqrt(d2 / n2) : std::sqrt(d2));
      }
    }
  }
  return out;
}

class CudaQuantize : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaQuantize, RecordsMatchTheCpuReference) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 1000;
  for (int dim : testing::kHeadDims) {
    for (DType dtype : {DType::f32, DType::f16}) {
      const Outcome o = run_quantize(GetParam(), dim, dtype, ++seed);
      SCOPED_TRACE(GetParam() + " d=" + std::to_string(dim) + (dtype == DType::f16 ? " f16 input" : " f32 input"));
      ASSERT_GT(o.records, 400u);
      EXPECT_LE(o.mismatched * 1000, o.records) << o.mismatched << " of " << o.records << " records differ";
      EXPECT_LT(o.worst_decode_diff, 0.2) << "a differing record decodes far from the reference";
      if (o.mismatched)
        std::printf("[ tie      ] %s d=%d: %zu of %zu records differ (worst decode diff %.3g)\n", GetParam().c_str(),
                    dim, o.mismatched, o.records, o.worst_decode_diff);
    }
  }
}

// A decode step's few tokens: a tile holds fewer vectors than one per warp (the dense
// product split over a cluster skips the missing ones), every record as the reference's.
TEST_P(CudaQuantize, DecodeSizedWritesMatchTheCpuReference) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 2000;
  for (int dim : testing::kHeadDims)
    for (int n_tokens : {1, 3}) {
      const Outcome o = run_quantize(GetParam(), dim, DType::f16, ++seed, n_tokens);
      SCOPED_TRACE(GetParam() + " d=" + std::to_string(dim) + ", " + std::to_string(n_tokens) + " tokens");
      EXPECT_EQ(o.records, static_cast<size_t>(4 * n_tokens));  // 2 KV heads, K and V
      EXPECT_EQ(o.mismatched, 0u) << "worst decode diff " << o.worst_decode_diff;
    }
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, CudaQuantize, ::testing::ValuesIn(testing::supported_codecs()),
                         testing::CodecTestName());

TEST(CudaQuantizeBf16, Bf16InputMatchesTheReferenceOnTheWidenedValues) {
  TQ_REQUIRE_GPU();
  const KvCacheConfig cfg = testing::cache_config("rht3", "turbo4", 128, 1, 16, 32);
  DeviceKvCache cache(cfg);
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  const int n = 20;
  std::vector<uint16_t> bf(n * 128);
  std::vector<float> widened(n * 128);
  for (size_t i = 0; i < bf.size(); ++i) {
    float f = normal(rng);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    bf[i] = static_cast<uint16_t>(u >> 16);  // truncation is a valid bf16 value
    u = static_cast<uint32_t>(bf[i]) << 16;
    std::memcpy(&widened[i], &u, 4);
  }
  std::vector<int32_t> slots(n);
  std::iota(slots.begin(), slots.end(), 3);
  DeviceBuffer<uint16_t> k(bf), v(bf);
  DeviceBuffer<int32_t> s(slots);
  QuantizeParams p;
  p.keys = k.get();
  p.values = v.get();
  p.dtype = DType::bf16;
  p.n_tokens = n;
  p.slots = s.get();
  quantize_on_write(cache, p);
  for (int side = 0; side < 2; ++side) {
    std::vector<uint8_t> pool(cache.pool_bytes(0, side)), want(cache.record_bytes(0, side));
    cache.download_pool(0, side, pool.data(), pool.size());
    for (int t = 0; t < n; ++t) {
      cache.codec(0, 0, side).encode(&widened[t * 128], want.data());
      const size_t off = (slots[t] / 16) * cache.block_bytes(0, side) + (slots[t] % 16) * want.size();
      EXPECT_EQ(0, std::memcmp(&pool[off], want.data(), want.size())) << "side " << side << " token " << t;
    }
  }
}

}  // namespace
}  // namespace tq::cuda
