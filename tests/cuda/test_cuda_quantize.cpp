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

#include "codec_desc.h"
#include "cuda_test_util.h"
#include "turboquant/half.h"
#include "turboquant/quantizers.h"

namespace tq::cuda {
namespace {

using testing::DeviceBuffer;

struct Outcome {
  size_t records = 0, mismatched = 0;
  double worst_decode_diff = 0;  // relative L2 between the decodes of mismatched records
  // mse records, code by code (the near-tie contract, docs/CUDA.md): codes compared, codes
  // that differ, those more than one level off, and fp16 norms more than one unit off in
  // records whose codes all match (a corrected norm is ‖y‖ over the norm of the levels, so a
  // differing code moves it with the code).
  size_t codes = 0, codes_differing = 0, codes_far = 0, norms_far = 0;
};

// Adds the code-level comparison of two mse records to `out`.
void compare_codes(const MseQuantizer& q, int dim, const uint8_t* got, const uint8_t* want, Outcome& out) {
  std::vector<uint8_t> a(dim), b(dim);
  q.indices(got, a.data());
  q.indices(want, b.data());
  bool codes_match = true;
  for (int i = 0; i < dim; ++i) {
    ++out.codes;
    if (a[i] == b[i]) continue;
    codes_match = false;
    ++out.codes_differing;
    if (std::abs(int{a[i]} - int{b[i]}) > 1) ++out.codes_far;
  }
  const int norm_got = got[0] | got[1] << 8, norm_want = want[0] | want[1] << 8;  // same sign: |Δbits| is ulps
  if (codes_match && std::abs(norm_got - norm_want) > 1) ++out.norms_far;
}

// Fresh random keys and values with per-vector scales from 1e-2 to 1e2, some exact
// zero vectors, and a random slot for every token (some tokens skipped with -1). `pad`
// extra elements after each token's row make the rows misaligned for vector loads.
Outcome run_quantize(const std::string& codec, int dim, DType dtype, uint64_t seed, int n_tokens = 150, int pad = 0,
                     QuantizeKernel kernel = QuantizeKernel::auto_, int n_kv_heads = 2) {
  const KvCacheConfig cfg = testing::cache_config(codec, codec, dim, n_kv_heads, 16, std::max(256, n_tokens + 64), 2, seed);
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

  auto to_device = [&](const std::vector<float>& unpadded) {
    std::vector<float> h(static_cast<size_t>(n_tokens) * (width + pad), -7.f);
    for (int t = 0; t < n_tokens; ++t)
      std::copy_n(&unpadded[static_cast<size_t>(t) * width], width, &h[static_cast<size_t>(t) * (width + pad)]);
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
  p.token_stride = width + pad;
  p.slots = slots_dev.get();
  p.kernel = kernel;
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
        if (const auto* mse = dynamic_cast<const MseQuantizer*>(&c.quantizer()))
          compare_codes(*mse, dim, got, want.data(), out);
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

// A decode step's few tokens, every record as the reference's: auto_ (the warp kernel,
// one token per warp for a dense rotation) and the tiled kernel (whose tile then holds
// fewer vectors than one per warp; a dense product is split over a cluster on 9.0 and
// skips the missing ones).
TEST_P(CudaQuantize, DecodeSizedWritesMatchTheCpuReference) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 2000;
  for (QuantizeKernel kernel : {QuantizeKernel::auto_, QuantizeKernel::tiled})
    for (int dim : testing::kHeadDims)
      for (int n_tokens : {1, 3}) {
        const KvCacheConfig cfg = testing::cache_config(GetParam(), GetParam(), dim, 2, 16, 256);
        if (!quantize_kernel_unsupported(DeviceKvCache(cfg), 0, 0, kernel).empty()) continue;  // tiled: no fp8
        const Outcome o = run_quantize(GetParam(), dim, DType::f16, ++seed, n_tokens, 0, kernel);
        SCOPED_TRACE(GetParam() + " d=" + std::to_string(dim) + ", " + std::to_string(n_tokens) + " tokens, " +
                     kernel_name(kernel));
        EXPECT_EQ(o.records, static_cast<size_t>(4 * n_tokens));  // 2 KV heads, K and V
        EXPECT_EQ(o.mismatched, 0u) << "worst decode diff " << o.worst_decode_diff;
      }
}

// Why the warp kernel cannot write `codec` at head size `dim` on either side ("" when it can).
std::string warp_kernel_refusal(const std::string& codec, int dim) {
  const DeviceKvCache probe(testing::cache_config(codec, codec, dim, 2, 16, 256));
  for (int side : {0, 1})
    if (std::string why = quantize_kernel_unsupported(probe, 0, side, QuantizeKernel::warp); !why.empty()) return why;
  return "";
}

// The warp kernel forced on a write of 150 tokens, dense rotations included (auto_ sends
// those to it only for small writes): the reference's records, up to the documented ties.
TEST_P(CudaQuantize, WarpKernelMatchesTheCpuReference) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 2500;
  for (int dim : testing::kHeadDims) {
    if (const std::string why = warp_kernel_refusal(GetParam(), dim); !why.empty())
      GTEST_SKIP() << GetParam() << ": " << why;
    for (DType dtype : {DType::f32, DType::f16}) {
      const Outcome o = run_quantize(GetParam(), dim, dtype, ++seed, 150, 0, QuantizeKernel::warp);
      SCOPED_TRACE(GetParam() + " d=" + std::to_string(dim) + (dtype == DType::f16 ? " f16 input" : " f32 input"));
      ASSERT_GT(o.records, 400u);
      EXPECT_LE(o.mismatched * 1000, o.records) << o.mismatched << " of " << o.records << " records differ";
    }
  }
}

// A write with more CTAs than the device has SMs gives the warp kernel several tokens per
// warp: unrotated and rht codecs then run one 32-coordinate block per lane (the
// Hadamard's last stages as shuffles between a token's lanes), the others one vector per
// warp, at every head size, from f32 and f16 rows and from misaligned ones.
TEST_P(CudaQuantize, LaneBlockWritesMatchTheCpuReference) {
  TQ_REQUIRE_GPU();
  constexpr int kHeads = 8;
  const int n_tokens = testing::tokens_for_lane_block_writes(kHeads) + 40;  // and a ragged end
  uint64_t seed = 2700;
  for (int dim : testing::kHeadDims) {
    if (const std::string why = warp_kernel_refusal(GetParam(), dim); !why.empty())
      GTEST_SKIP() << GetParam() << ": " << why;
    for (DType dtype : {DType::f32, DType::f16})
      for (int pad : {0, 1}) {
        if (pad && dtype == DType::f32) continue;
        const Outcome o = run_quantize(GetParam(), dim, dtype, ++seed, n_tokens, pad, QuantizeKernel::warp, kHeads);
        SCOPED_TRACE(GetParam() + " d=" + std::to_string(dim) + (dtype == DType::f16 ? " f16 input" : " f32 input") +
                     (pad ? ", misaligned rows" : ""));
        ASSERT_GT(o.records, static_cast<size_t>(n_tokens) * kHeads);
        EXPECT_LE(o.mismatched * 1000, o.records) << o.mismatched << " of " << o.records << " records differ";
      }
  }
}

// Rows one element apart from 16-byte alignment take the kernels' element-wise loads.
TEST_P(CudaQuantize, MisalignedRowsMatchTheCpuReference) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 3000;
  for (int dim : testing::kHeadDims)
    for (DType dtype : {DType::f32, DType::f16}) {
      const Outcome o = run_quantize(GetParam(), dim, dtype, ++seed, 70, 1);
      SCOPED_TRACE(GetParam() + " d=" + std::to_string(dim) + (dtype == DType::f16 ? " f16 input" : " f32 input"));
      ASSERT_GT(o.records, 200u);
      EXPECT_LE(o.mismatched * 1000, o.records) << o.mismatched << " of " << o.records << " records differ";
    }
}

// The tensor-core kernel's operand (host code, no GPU): hi + lo rebuild every entry of the
// scaled matrix to 2^-22 of its largest, that largest lies in [2^14, 2^15) (f16's range
// with room), and entry (row, col) sits where mma.m16n8k16 reads B[k = col % 16][n = row % 8].
TEST(DenseMmaFragments, HalvesRebuildTheScaledMatrixInFragmentOrder) {
  for (int n : {64, 128}) {
    std::mt19937_64 rng(n);
    std::normal_distribution<float> normal;
    std::vector<float> f(static_cast<size_t>(n) * n);
    for (float& v : f) v = 0.08f * normal(rng);
    f[5] = -3.7f;  // the largest entry
    float unscale = 0.f;
    const std::vector<uint32_t> frags = detail::dense_mma_fragments(f, n, unscale);
    ASSERT_EQ(frags.size(), f.size());
    const float top = 3.7f / unscale;
    EXPECT_GE(top, 16384.f);
    EXPECT_LT(top, 32768.f);
    EXPECT_EQ(std::ldexp(1.f, static_cast<int>(std::lround(-std::log2(unscale)))), 1.f / unscale) << "a power of two";
    float worst = 0.f;
    for (int nt = 0; nt < n / 8; ++nt)
      for (int ks = 0; ks < n / 16; ++ks)
        for (int lane = 0; lane < 32; ++lane) {
          const uint32_t* w = &frags[((static_cast<size_t>(nt) * (n / 16) + ks) * 32 + lane) * 4];
          for (int reg = 0; reg < 2; ++reg)
            for (int e = 0; e < 2; ++e) {
              const int k = 2 * (lane % 4) + e + 8 * reg, row = 8 * nt + lane / 4, col = 16 * ks + k;
              const float hi = half_to_float(static_cast<uint16_t>(w[reg] >> (16 * e)));
              const float lo = half_to_float(static_cast<uint16_t>(w[2 + reg] >> (16 * e)));
              const float want = f[static_cast<size_t>(row) * n + col] / unscale;
              worst = std::max(worst, std::fabs(hi + lo - want));
            }
        }
    EXPECT_LE(worst, std::ldexp(top, -22)) << "n = " << n;
  }
}

// The tensor-core kernel (dense rotations, mse codes): records may differ only at
// near-ties, at most 1 code in 10^4, each differing code one level off, the fp16 norm at
// most one unit off.
void expect_near_tie_contract(const Outcome& o) {
  ASSERT_GT(o.codes, 0u);
  EXPECT_LE(o.codes_differing * 10000, o.codes) << o.codes_differing << " of " << o.codes << " codes differ";
  EXPECT_EQ(o.codes_far, 0u) << "codes more than one level off";
  EXPECT_EQ(o.norms_far, 0u) << "fp16 norms more than one unit off";
  if (o.codes_differing || o.mismatched)
    std::printf("[ near-tie ] %zu of %zu codes, %zu of %zu records differ (worst decode diff %.2g)\n",
                o.codes_differing, o.codes, o.mismatched, o.records, o.worst_decode_diff);
}

TEST_P(CudaQuantize, TensorCoreRecordsKeepTheNearTieContract) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 4000;
  int ran = 0;
  for (int dim : testing::kHeadDims) {
    const KvCacheConfig cfg = testing::cache_config(GetParam(), GetParam(), dim, 2, 16, 256, 2, 1);
    DeviceKvCache probe(cfg);
    const std::string why = quantize_kernel_unsupported(probe, 1, 0, QuantizeKernel::tensor);
    if (!why.empty()) {
      EXPECT_NE(why.find("tensor-core"), std::string::npos) << why;
      continue;
    }
    for (DType dtype : {DType::f32, DType::f16})
      for (int pad : {0, 1}) {
        SCOPED_TRACE(GetParam() + " d=" + std::to_string(dim) + (dtype == DType::f16 ? " f16" : " f32") +
                     (pad ? " misaligned rows" : ""));
        expect_near_tie_contract(run_quantize(GetParam(), dim, dtype, ++seed, 150, pad, QuantizeKernel::tensor));
        ++ran;
      }
  }
  if (!ran) GTEST_SKIP() << GetParam() << ": the tensor-core kernel takes dense rotations with mse codes only";
}

// A prefill-sized write (more tiles than SMs) goes to the tensor-core kernel by itself for
// dense rotations and stays inside the contract; every other codec stays byte-identical.
TEST_P(CudaQuantize, LargeWritesMatchTheCpuReference) {
  TQ_REQUIRE_GPU();
  const Outcome o = run_quantize(GetParam(), 128, DType::f32, 5000, 2048, 0, QuantizeKernel::auto_, 4);
  ASSERT_GT(o.records, 15000u);
  const KvCacheConfig cfg = testing::cache_config(GetParam(), GetParam(), 128, 2, 16, 256, 2, 1);
  DeviceKvCache probe(cfg);
  if (quantize_kernel_unsupported(probe, 1, 0, QuantizeKernel::tensor).empty()) {
    expect_near_tie_contract(o);
  } else {
    EXPECT_LE(o.mismatched * 1000, o.records) << o.mismatched << " of " << o.records << " records differ";
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
