// C API: the device cache (c_api_cuda.h). On a GPU its decode attention is checked against the
// CPU cache's (tq_cache_attend) on the same tokens and codecs; without a device the GPU tests
// skip with a message; in a library built without CUDA every call must say so.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "capi_test_util.h"
#include "turboquant/c_api.h"
#include "turboquant/c_api_cuda.h"

#ifdef TQ_TEST_HAVE_CUDA
#include "../core/calib_test_util.h"
#endif

#ifdef TQ_TEST_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace {

constexpr int kKvHeads = 2, kHeads = 8, kDim = 128, kBlock = 16, kBatch = 3, kBlocksPerRow = 4;

tq_cache_config config(const char* k, const char* v) {
  tq_cache_config c = tq_cache_config_default();
  c.n_layers = 2;
  c.n_kv_heads = kKvHeads;
  c.head_dim = kDim;
  c.k_codec = k;
  c.v_codec = v;
  c.block_tokens = kBlock;
  c.max_tokens = kBatch * kBlocksPerRow * kBlock;
  c.seed = 5;
  return c;
}

using tq::capi_test::random_floats;

TEST(CApiCuda, ParamsDefaults) {
  const tq_cuda_quantize_params q = tq_cuda_quantize_params_default();
  EXPECT_EQ(q.check, 1);
  EXPECT_EQ(q.dtype, TQ_DTYPE_F32);
  EXPECT_EQ(q.slots, nullptr);
  EXPECT_EQ(q.kernel, TQ_CUDA_QUANTIZE_AUTO);
  const tq_cuda_decode_params d = tq_cuda_decode_params_default();
  EXPECT_EQ(d.num_splits, 0);
  EXPECT_EQ(d.out, nullptr);
  EXPECT_EQ(d.window, 0);
  EXPECT_EQ(d.out_dtype, TQ_DTYPE_F32);
}

#ifndef TQ_TEST_HAVE_CUDA

TEST(CApiCuda, BuiltWithoutCudaSaysSo) {
  EXPECT_EQ(tq_cuda_available(), 0);
  const tq_cache_config c = config("turbo3", "turbo3");
  tq_cuda_cache* cache = nullptr;
  EXPECT_EQ(tq_cuda_cache_create(&c, &cache), TQ_ERROR_LIBRARY);
  EXPECT_EQ(cache, nullptr);
  EXPECT_NE(std::string(tq_last_error()).find("built without CUDA"), std::string::npos) << tq_last_error();
  const tq_cuda_decode_params d = tq_cuda_decode_params_default();
  EXPECT_EQ(tq_cuda_decode(nullptr, &d), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("tq_cuda_decode"), std::string::npos) << tq_last_error();
  tq_cuda_cache_destroy(nullptr);
}

#else

// Device memory holding a host vector's bytes (freed at scope end).
template <class T>
struct DeviceArray {
  T* p = nullptr;
  explicit DeviceArray(const std::vector<T>& host) {
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(host.size(), 1) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(p); }
  std::vector<T> download(size_t n) const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

class CApiCudaDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tq_cuda_available()) GTEST_SKIP() << "no CUDA device: the device cache's C API is checked on a GPU";
  }
};

// A random calibration profile of the test's shapes, loaded through tq_profile_load.
struct TestProfile {
  std::string path = (std::filesystem::temp_directory_path() / "tq_capi_cuda_profile.tqp").string();
  tq_profile* handle = nullptr;
  TestProfile() {
    tq::save_profile(tq::test::random_profile(21, 2, kHeads, kKvHeads, kDim), path);
    EXPECT_EQ(tq_profile_load(path.c_str(), &handle), TQ_OK) << tq_last_error();
  }
  ~TestProfile() {
    tq_profile_destroy(handle);
    std::filesystem::remove(path);
  }
};

// Rows of different lengths, written token-major with their slots (and, for the preset's sink
// tokens, positions and sequence ids), then one decode step per layer (layer 1 with a sliding
// window of 20) against tq_cache_attend over the same tokens in the CPU cache.
TEST_F(CApiCudaDevice, DecodeMatchesCpuCache) {
  const TestProfile profile;
  for (const auto& [kc, vc] : {std::pair{"turbo3", "turbo3"}, std::pair{"turbo4", "v3g32"}, std::pair{"q8_0", "f16"},
                               std::pair{"tq3", "tq3"}}) {
    SCOPED_TRACE(std::string(kc) + "/" + vc);
    tq_cache_config c = config(kc, vc);
    c.profile = profile.handle;  // read only by the preset
    tq_cuda_cache* dev = nullptr;
    ASSERT_EQ(tq_cuda_cache_create(&c, &dev), TQ_OK) << tq_last_error();
    tq_cache* cpu = nullptr;
    ASSERT_EQ(tq_cache_create(&c, &cpu), TQ_OK) << tq_last_error();
    int num_blocks = 0;
    ASSERT_EQ(tq_cuda_cache_num_blocks(dev, &num_blocks), TQ_OK);
    EXPECT_EQ(num_blocks, kBatch * kBlocksPerRow);
    const int lens[kBatch] = {37, 1, 64};
    const size_t row = static_cast<size_t>(kKvHeads) * kDim;
    std::vector<int32_t> tables, seq_lens(lens, lens + kBatch);
    for (int b = 0; b < kBatch; ++b)
      for (int i = 0; i < kBlocksPerRow; ++i) tables.push_back(b * kBlocksPerRow + i);
    for (int layer = 0; layer < 2; ++layer) {
      std::vector<float> k, v;
      std::vector<int32_t> slots, positions, seq_ids;
      for (int b = 0; b < kBatch; ++b) {
        if (layer == 0) {
          int seq;
          ASSERT_EQ(tq_cache_add_sequence(cpu, &seq), TQ_OK);
          ASSERT_EQ(seq, b);
        }
        const std::vector<float> kb = random_floats(lens[b] * row, 100 + 10 * layer + b);
        const std::vector<float> vb = random_floats(lens[b] * row, 200 + 10 * layer + b);
        ASSERT_EQ(tq_cache_append(cpu, layer, b, lens[b], kb.data(), vb.data()), TQ_OK) << tq_last_error();
        k.insert(k.end(), kb.begin(), kb.end());
        v.insert(v.end(), vb.begin(), vb.end());
        for (int t = 0; t < lens[b]; ++t) {
          slots.push_back(b * kBlocksPerRow * kBlock + t);
          positions.push_back(t);
          seq_ids.push_back(b);
        }
      }
      DeviceArray<float> dk(k), dv(v);
      DeviceArray<int32_t> ds(slots), dpos(positions), dseq(seq_ids);
      tq_cuda_quantize_params qp = tq_cuda_quantize_params_default();
      qp.layer = layer;
      qp.k = dk.p;
      qp.v = dv.p;
      qp.n_tokens = static_cast<int>(slots.size());
      qp.slots = ds.p;
      qp.positions = dpos.p;  // unused without sinks
      qp.seq_ids = dseq.p;
      ASSERT_EQ(tq_cuda_quantize(dev, &qp), TQ_OK) << tq_last_error();

      const std::vector<float> q = random_floats(kBatch * kHeads * kDim, 300 + layer);
      DeviceArray<float> dq(q), dout{std::vector<float>(q.size(), 0.f)};
      DeviceArray<int32_t> dt(tables), dl(seq_lens), drows(std::vector<int32_t>{0, 1, 2});
      tq_cuda_decode_params p = tq_cuda_decode_params_default();
      p.layer = layer;
      p.q = dq.p;
      p.batch = kBatch;
      p.n_q_heads = kHeads;
      p.block_tables = dt.p;
      p.max_blocks_per_seq = kBlocksPerRow;
      p.seq_lens = dl.p;
      p.max_seq_len = kBlocksPerRow * kBlock;
      p.out = dout.p;
      p.seq_ids = drows.p;  // sequence b is row b (sinks)
      p.window = layer == 1 ? 20 : 0;  // layer 1: a sliding window shorter than rows 0 and 2
      size_t ws_bytes = 0;
      ASSERT_EQ(tq_cuda_decode_workspace_bytes(dev, &p, &ws_bytes), TQ_OK) << tq_last_error();
      int splits = 0;
      ASSERT_EQ(tq_cuda_decode_num_splits(dev, &p, &splits), TQ_OK);
      EXPECT_GE(splits, 1);
      DeviceArray<uint8_t> ws{std::vector<uint8_t>(ws_bytes)};
      p.workspace = ws.p;
      p.workspace_bytes = ws_bytes;
      ASSERT_EQ(tq_cuda_decode(dev, &p), TQ_OK) << tq_last_error();
      const std::vector<float> got = dout.download(q.size());

      // The CPU cache over the same tokens: the same records, decoded and summed another way.
      const tq_attention_params ap = {kHeads, 1.0f / std::sqrt(static_cast<float>(kDim)), p.window, 0.0f};
      for (int b = 0; b < kBatch; ++b) {
        std::vector<float> want(kHeads * kDim);
        ASSERT_EQ(tq_cache_attend(cpu, layer, b, q.data() + b * kHeads * kDim, 1, lens[b] - 1, &ap, want.data()), TQ_OK);
        double norm = 0, err = 0;
        for (size_t i = 0; i < want.size(); ++i) {
          norm += double(want[i]) * want[i];
          err += std::pow(double(want[i]) - got[b * kHeads * kDim + i], 2);
        }
        // The CUDA tests' bound (tests/cuda/test_cuda_attention.cpp): ‖gpu − cpu‖ / ‖cpu‖ < 1e-3.
        EXPECT_LT(std::sqrt(err / norm), 1e-3) << "row " << b << " layer " << layer;
      }
    }
    tq_cache_destroy(cpu);
    tq_cuda_cache_destroy(dev);
  }
}

// An explicit kernel is the one that writes: tiled and warp records byte-identical for
// q8_0 (both exact), and a kernel the codec lacks (fp8 has no tiled kernel) refused, named.
TEST_F(CApiCudaDevice, ExplicitQuantizeKernelWritesOrIsRefused) {
  const int n = kBlocksPerRow * kBlock;
  std::vector<int32_t> slots(n);
  for (int t = 0; t < n; ++t) slots[t] = t;
  const std::vector<float> k = random_floats(n * kKvHeads * kDim, 41), v = random_floats(n * kKvHeads * kDim, 42);
  DeviceArray<float> dk(k), dv(v);
  DeviceArray<int32_t> ds(slots);
  auto write = [&](const char* codec, tq_cuda_quantize_kernel kernel, std::vector<uint8_t>* pool_bytes) {
    const tq_cache_config c = config(codec, codec);
    tq_cuda_cache* dev = nullptr;
    EXPECT_EQ(tq_cuda_cache_create(&c, &dev), TQ_OK) << tq_last_error();
    tq_cuda_quantize_params qp = tq_cuda_quantize_params_default();
    qp.k = dk.p;
    qp.v = dv.p;
    qp.n_tokens = n;
    qp.slots = ds.p;
    qp.kernel = kernel;
    const tq_status status = tq_cuda_quantize(dev, &qp);
    if (status == TQ_OK && pool_bytes) {
      void* pool = nullptr;
      size_t bytes = 0;
      EXPECT_EQ(tq_cuda_cache_pool(dev, 0, 0, &pool, &bytes), TQ_OK);
      pool_bytes->resize(bytes);
      EXPECT_EQ(cudaMemcpy(pool_bytes->data(), pool, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    }
    tq_cuda_cache_destroy(dev);
    return status;
  };
  std::vector<uint8_t> tiled, warp;
  ASSERT_EQ(write("q8_0", TQ_CUDA_QUANTIZE_TILED, &tiled), TQ_OK) << tq_last_error();
  ASSERT_EQ(write("q8_0", TQ_CUDA_QUANTIZE_WARP, &warp), TQ_OK) << tq_last_error();
  ASSERT_FALSE(tiled.empty());
  EXPECT_TRUE(tiled == warp) << "q8_0 records of the tiled and warp kernels differ";
  EXPECT_EQ(write("fp8", TQ_CUDA_QUANTIZE_TILED, nullptr), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("tiled"), std::string::npos) << tq_last_error();
}

TEST_F(CApiCudaDevice, ErrorsNameTheProblem) {
  tq_cache_config c = config("turbo3", "turbo3");
  tq_cuda_cache* dev = nullptr;
  EXPECT_EQ(tq_cuda_cache_create(nullptr, &dev), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("config is NULL"), std::string::npos) << tq_last_error();
  c.k_codec = "turbo9";
  EXPECT_EQ(tq_cuda_cache_create(&c, &dev), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("turbo9"), std::string::npos) << tq_last_error();
  c.k_codec = "tq3";  // a calibrated preset needs a profile, which this API does not take
  EXPECT_EQ(tq_cuda_cache_create(&c, &dev), TQ_ERROR_LIBRARY);
  EXPECT_EQ(dev, nullptr);
  c = config("turbo3", "turbo3");
  ASSERT_EQ(tq_cuda_cache_create(&c, &dev), TQ_OK) << tq_last_error();
  // A NaN input with check = 1: refused, named, the call reports it.
  std::vector<float> k(kKvHeads * kDim, 0.5f);
  k[kDim + 3] = NAN;
  DeviceArray<float> dk(k);
  DeviceArray<int32_t> ds{std::vector<int32_t>{0}};
  tq_cuda_quantize_params qp = tq_cuda_quantize_params_default();
  qp.k = qp.v = dk.p;
  qp.n_tokens = 1;
  qp.slots = ds.p;
  EXPECT_EQ(tq_cuda_quantize(dev, &qp), TQ_ERROR_LIBRARY);
  EXPECT_NE(std::string(tq_last_error()).find("NaN"), std::string::npos) << tq_last_error();
  qp.dtype = static_cast<tq_dtype>(7);
  EXPECT_EQ(tq_cuda_quantize(dev, &qp), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("dtype"), std::string::npos) << tq_last_error();
  qp.dtype = TQ_DTYPE_F32;
  qp.kernel = static_cast<tq_cuda_quantize_kernel>(9);
  EXPECT_EQ(tq_cuda_quantize(dev, &qp), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("kernel"), std::string::npos) << tq_last_error();
  tq_cuda_decode_params dp = tq_cuda_decode_params_default();
  dp.out_dtype = static_cast<tq_dtype>(5);  // refused before any pointer is read
  EXPECT_EQ(tq_cuda_decode(dev, &dp), TQ_ERROR_ARGUMENT);
  EXPECT_NE(std::string(tq_last_error()).find("out_dtype"), std::string::npos) << tq_last_error();
  size_t rb = 0;
  EXPECT_NE(tq_cuda_cache_record_bytes(dev, 9, 0, &rb), TQ_OK);  // layer 9 of 2
  void* pool = nullptr;
  size_t bytes = 0;
  ASSERT_EQ(tq_cuda_cache_pool(dev, 1, 1, &pool, &bytes), TQ_OK);
  ASSERT_EQ(tq_cuda_cache_record_bytes(dev, 1, 1, &rb), TQ_OK);
  EXPECT_NE(pool, nullptr);
  EXPECT_EQ(bytes, static_cast<size_t>(kBatch * kBlocksPerRow) * kKvHeads * kBlock * rb);
  tq_cuda_cache_destroy(dev);
}

#endif

}  // namespace
