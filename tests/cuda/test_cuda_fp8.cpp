// The fp8 codec on CUDA against the CPU reference (fp8.h, Fp8Quantizer). The host test runs
// without a GPU: cuda_fp8.h's conversions (the software path the sm_80 build runs) against
// float_to_e4m3 / e4m3_to_float. The device test writes vectors that hit every E4M3 code,
// every midpoint between two codes (ties to even), both neighbours of each midpoint and
// saturated scales through quantize_on_write (sm_90: cvt.rn.satfinite.e4m3x2.f32), and
// expects the CPU's records byte for byte. Random inputs and attention run in the
// EveryCodec suites of test_cuda_quantize / test_cuda_attention / test_cuda_range.
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

#include "cuda_test_util.h"
#include "turboquant/fp8.h"
#include "turboquant/range.h"

namespace tq::cuda {
namespace {


bool is_nan_code(int c) { return (c & 0x7f) == 0x7f; }

// Every finite code's value, then the midpoints between neighbouring codes and the floats
// just beside them, both signs.
std::vector<float> interesting_values() {
  std::vector<float> v;
  for (int c = 0; c < 256; ++c)
    if (!is_nan_code(c)) v.push_back(e4m3_to_float(static_cast<uint8_t>(c)));
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = e4m3_to_float(c), hi = e4m3_to_float(c + 1), mid = lo + (hi - lo) / 2;
    for (float x : {mid, std::nextafter(mid, 0.f), std::nextafter(mid, 1e9f)}) {
      v.push_back(x);
      v.push_back(-x);
    }
  }
  return v;
}

TEST(CudaFp8Host, ReferenceMatchesTheCudaFp8Header) {
  for (int c = 0; c < 256; ++c) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(c), __NV_E4M3);
    const float want = __half2float(__half(h));
    const float got = e4m3_to_float(static_cast<uint8_t>(c));
    if (is_nan_code(c)) {
      EXPECT_TRUE(std::isnan(got) && std::isnan(want)) << c;
      continue;
    }
    EXPECT_EQ(std::memcmp(&got, &want, 4), 0) << "code " << c << ": " << got << " vs " << want;
  }
  auto same = [](float x) {
    return float_to_e4m3(x) == __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
  };
  for (float x : interesting_values()) EXPECT_TRUE(same(x)) << x;
  for (float x : {0.f, -0.f, 1e-40f, -1e-40f, 464.f, -464.f, 1e30f, -1e30f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::nanf("")})
    EXPECT_TRUE(same(x)) << x;
  for (uint32_t b = 0; b < 0x7f800000u; b += 4099)
    for (uint32_t s : {0u, 0x80000000u}) {
      const uint32_t bits = b | s;
      float x;
      std::memcpy(&x, &bits, 4);
      ASSERT_TRUE(same(x)) << x;
    }
}

// Vectors of head_dim 256 cut from the interesting values (scale 1: one coordinate is 448),
// the same at scales 2^-30 (below the smallest fp16 scale) and 2^15, and vectors whose scale saturates.
TEST(CudaFp8, EveryCodeTieAndSaturationMatchesTheReference) {
  TQ_REQUIRE_GPU();
  constexpr int kDim = 256;
  const std::vector<float> values = interesting_values();
  std::vector<std::vector<float>> vecs;
  for (float scale : {1.f, std::ldexp(1.f, -30), std::ldexp(1.f, 15)})
    for (size_t i0 = 0; i0 < values.size(); i0 += kDim - 1) {
      std::vector<float> v(kDim, 0.f);
      v[0] = 448.f * scale;
      for (int i = 1; i < kDim && i0 + i - 1 < values.size(); ++i) v[i] = values[i0 + i - 1] * scale;
      vecs.push_back(v);
    }
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  for (float big : {3e7f, 1e12f, 1e30f}) {  // max|x|/448 past 65504: codes saturate too
    std::vector<float> v(kDim);
    for (float& e : v) e = big * normal(rng);
    vecs.push_back(v);
  }

  const int n = static_cast<int>(vecs.size());
  const KvCacheConfig cfg = testing::cache_config("fp8", "fp8", kDim, 1, 16, 16 * ((n + 15) / 16));
  DeviceKvCache cache(cfg);
  std::vector<float> flat;
  for (const auto& v : vecs) flat.insert(flat.end(), v.begin(), v.end());
  const uint64_t before = range_events().saturated;
  testing::write_in_order(cache, flat, flat, n);
  testing::check(cudaDeviceSynchronize(), "quantize_on_write");
  EXPECT_EQ(range_events().saturated - before, 2u * 3u) << "the three saturated vectors, K and V";

  const size_t rb = cache.record_bytes(0, 0);
  ASSERT_EQ(rb, 2u + kDim);
  std::vector<uint8_t> want(rb);
  for (int side = 0; side < 2; ++side) {
    std::vector<uint8_t> pool(cache.pool_bytes(0, side));
    cache.download_pool(0, side, pool.data(), pool.size());
    for (int t = 0; t < n; ++t) {
      cache.codec(0, 0, side).encode(vecs[t].data(), want.data());
      const uint8_t* got = &pool[(t / 16) * cache.block_bytes(0, side) + (t % 16) * rb];
      for (size_t b = 0; b < rb; ++b)
        ASSERT_EQ(got[b], want[b]) << "side " << side << " vector " << t << " byte " << b
                                   << (b >= 2 ? " (coordinate " + std::to_string(b - 2) + ")" : " (scale)");
    }
  }
}

}  // namespace
}  // namespace tq::cuda
