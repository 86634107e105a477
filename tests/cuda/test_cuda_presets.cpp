// Calibrated presets (tq2.5 / tq3 / tq3.5 / tq4) on the GPU, with codecs built from a
// random calibration profile (tests/core/calib_test_util.h) at head_dim 64/128/256:
//   encode: quantize-on-write against Codec::encode. Contract: ≥ 99.9% of groups
//     byte-identical, and every differing group's cos θ (code-space group against its
//     decoded values) within 1e-5 of the CPU record's;
//   attention: decode attention over CPU-written pools against the CPU reference, GQA
//     1/2/4/8, ragged sequences, relative error < 1e-3, on each split kernel named
//     explicitly: the tensor-core kernel (f16 operands: ~1e-4 expected) and the CUDA-core
//     reference path (f32: ~1e-7);
//   sinks: a device cache written by quantize_on_write with sink_tokens = 1 attends like
//     the CPU KvCache holding the same tokens (attend_reference), on both kernels;
//   errors: a cache with sinks refuses writes and reads without positions / seq_ids.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda_attention_ref.h"
#include "cuda_preset_util.h"
#include "turboquant/codec.h"
#include "turboquant/attention.h"
#include "turboquant/kv_profile.h"
#include "turboquant/quantizers.h"
#include "turboquant/rng.h"

namespace tq::cuda {
namespace {

using testing::DeviceBuffer;

const std::vector<std::string> kPresets = testing::preset_names();

using testing::calibrated;
using testing::preset_config;

// cos θ between a run's code-space values y and its decoded values yhat.
double run_cos(const float* y, const float* yhat, int n) {
  double dot = 0, yy = 0, hh = 0;
  for (int i = 0; i < n; ++i) {
    dot += double(y[i]) * yhat[i];
    yy += double(y[i]) * y[i];
    hh += double(yhat[i]) * yhat[i];
  }
  return yy > 0 && hh > 0 ? dot / std::sqrt(yy * hh) : 1.0;
}

struct EncodeContract {
  long groups = 0, differ = 0;
  double worst = 0;  // largest |Δ cos θ| of a differing group
};

// quantize_on_write of 1024 random tokens (2 KV heads, K and V) against Codec::encode.
EncodeContract encode_contract(const KvCacheConfig& cfg, uint64_t seed) {
  const int d = cfg.head_dim, n_kv = cfg.n_kv_heads, n_tok = 1024;
  DeviceKvCache cache(cfg);
  Rng rng(seed);
  std::vector<float> k(static_cast<size_t>(n_tok) * n_kv * d), v(k.size());
  for (float& x : k) x = static_cast<float>(rng.gaussian() * 1.5 + 0.7);
  for (float& x : v) x = static_cast<float>(rng.gaussian() * 0.8 - 0.2);
  testing::write_in_order(cache, k, v, n_tok);  // block t / block_tokens, in order

  EncodeContract out;
  const int bt = cfg.block_tokens;
  for (int side = 0; side < 2; ++side) {
    std::vector<uint8_t> pool(cache.pool_bytes(0, side));
    cache.download_pool(0, side, pool.data(), pool.size());
    const size_t rb = cache.record_bytes(0, side);
    for (int h = 0; h < n_kv; ++h) {
      const Codec& codec = cache.codec(0, h, side);
      const auto& q = dynamic_cast<const GroupedMseQuantizer&>(codec.quantizer());
      std::vector<uint8_t> ref(rb);
      std::vector<float> y(d), yhat_ref(d), yhat_gpu(d);
      for (int t = 0; t < n_tok; ++t) {
        const float* x = (side ? v : k).data() + (static_cast<size_t>(t) * n_kv + h) * d;
        const uint8_t* got = &pool[(t / bt) * cache.block_bytes(0, side) + (h * bt + t % bt) * rb];
        codec.encode(x, ref.data());
        codec.to_code(x, y.data());
        q.decode(ref.data(), yhat_ref.data());
        q.decode(got, yhat_gpu.data());
        for (const auto& r : q.runs()) {
          if (r.bits == 0) continue;
          const size_t bytes = r.norm_bytes + (static_cast<size_t>(r.size) * r.bits + 7) / 8;
          ++out.groups;
          if (std::memcmp(ref.data() + r.offset, got + r.offset, bytes) == 0) continue;
          if (++out.differ <= 3) {  // the first few, for diagnosis
            std::printf("    differs: side %d head %d token %d, run %d@%d/%d bits, norm bytes %d; cpu/gpu:", side, h, t,
                        r.size, r.begin, r.bits, r.norm_bytes);
            for (size_t i = 0; i < bytes; ++i) std::printf(" %02x/%02x", ref[r.offset + i], got[r.offset + i]);
            std::printf("\n");
          }
          const double dc = std::abs(run_cos(y.data() + r.begin, yhat_gpu.data() + r.begin, r.size) -
                                     run_cos(y.data() + r.begin, yhat_ref.data() + r.begin, r.size));
          out.worst = std::max(out.worst, dc);
        }
      }
    }
  }
  return out;
}

class CudaPresetEncode : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaPresetEncode, GroupsMatchTheCpuEncoderWithinTheContract) {
  TQ_REQUIRE_GPU();
  for (int d : testing::kHeadDims) {
    const EncodeContract c = encode_contract(preset_config(GetParam(), d, 2), 77 + d);
    std::printf("  %s d=%d: %ld groups, %ld differ (worst |dcos| %.2e)\n", GetParam().c_str(), d, c.groups, c.differ,
                c.worst);
    EXPECT_LE(c.differ * 1000, c.groups) << GetParam() << " d=" << d;
    EXPECT_LE(c.worst, 1e-5) << GetParam() << " d=" << d;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CudaPresetEncode, ::testing::ValuesIn(kPresets), testing::CodecTestName());

class CudaPresetAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaPresetAttention, MatchesTheCpuReferenceOverGqaGroups) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 300;
  for (int d : testing::kHeadDims)
    for (int group : {1, 2, 4, 8}) {
      for (DecodeKernel kernel : {DecodeKernel::mma, DecodeKernel::simt}) {
        const testing::Shape s{2, group, 32, {1, 45, 260, 700}, 0, kernel};
        const double err = testing::attention_error(preset_config(GetParam(), d, 2), s, ++seed);
        const char* name = kernel == DecodeKernel::simt ? "simt" : "tensor core";
        std::printf("  %s d=%d group %d %s: relative error %.2e\n", GetParam().c_str(), d, group, name, err);
        EXPECT_LT(err, 1e-3) << GetParam() << " d=" << d << " group " << group << " " << name;
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Presets, CudaPresetAttention, ::testing::ValuesIn(kPresets), testing::CodecTestName());

TEST(CudaPresetAttentionMixed, PresetKeysWithOtherValuesAndForcedSplits) {
  TQ_REQUIRE_GPU();
  KvCacheConfig c = preset_config("tq3", 128, 2);
  c.v_codec = "turbo3";  // a preset side next to an ordinary codec
  EXPECT_LT(testing::attention_error(c, {2, 4, 16, {5, 300, 31}, 3}, 41), 1e-3);
  c.k_codec = "q8_0";
  c.v_codec = "tq3";
  EXPECT_LT(testing::attention_error(c, {2, 4, 16, {1000}, 64}, 42), 1e-3);
  // A mixed pair has no tensor-core kernel: asking for one is an error, not a fallback.
  EXPECT_THROW(testing::attention_error(c, {2, 4, 16, {100}, 0, DecodeKernel::mma}, 43), Error);
  // The tensor-core kernel with forced splits and blocks of 24 tokens (not a power of two).
  for (int d : testing::kHeadDims) {
    const KvCacheConfig p = preset_config("tq3.5", d, 2);
    EXPECT_LT(testing::attention_error(p, {2, 2, 24, {5, 300, 1000}, 7, DecodeKernel::mma}, 44), 1e-3)
        << "d=" << d;
  }
}

// A hand-made layout with an odd record size (31 bytes), an fp16 norm at an odd offset,
// log-byte norms and a width-0 group: the byte-wise store, the 4- and 8-byte tile copies
// and the zero run.
KvCacheConfig odd_layout_config() {
  KvCacheConfig c = preset_config("tq3", 128, 2);
  auto cc = std::make_shared<CalibratedCodecs>(*c.calibrated);
  const std::vector<QuantGroup> groups = {{4, 4, 8}, {20, 4, 16}, {40, 2, 8}, {32, 1, 8}, {32, 0, 8}};
  cc->keys[0].groups = cc->values[0].groups = groups;
  c.calibrated = cc;
  return c;
}

TEST(CudaPresetOddLayout, EncodeContractAndAttention) {
  TQ_REQUIRE_GPU();
  const KvCacheConfig c = odd_layout_config();
  ASSERT_EQ(Codec::make_calibrated(*find_preset("tq3"), c.calibrated->keys[0].maps[0], c.calibrated->keys[0].groups)
                .record_bytes(),
            31u);
  const EncodeContract e = encode_contract(c, 5);
  EXPECT_LE(e.differ * 1000, e.groups);
  EXPECT_LE(e.worst, 1e-5);
  for (int group : {1, 2, 4, 8})
    for (DecodeKernel kernel : {DecodeKernel::mma, DecodeKernel::simt})
      EXPECT_LT(testing::attention_error(c, {2, group, 32, {3, 77, 300}, 0, kernel}, 60 + group), 1e-3)
          << "group " << group << (kernel == DecodeKernel::simt ? " simt" : " tensor core");
}

// Writes the same tokens into a CPU KvCache and, through quantize_on_write with positions
// and sequence ids, into a device cache (upload: the CPU cache's pools and sink rows are
// uploaded instead); then attends the last position of each sequence on both. Returns the
// largest relative error over sequences.
double sink_attention_error(const std::string& codec, int d, int group, int sinks, bool upload = false,
                            DecodeKernel kernel = DecodeKernel::auto_) {
  const int n_kv = 2, bt = 32;
  KvCacheConfig cfg = testing::cache_config(codec, codec, d, n_kv, bt, 2048, 1, 9);
  if (find_preset(codec)) cfg.calibrated = calibrated(codec, d, n_kv, sinks);
  cfg.sink_tokens = sinks;
  KvCache cpu(cfg);
  DeviceKvCache dev(cfg);
  const std::vector<int> lens = {3, 200, 513};
  Rng rng(5 + d);
  const std::vector<int> ids = testing::write_sequences(cpu, dev, lens, rng, {.upload = upload});
  return testing::attend_error(cpu, dev, ids, lens, group, rng, kernel);
}

TEST(CudaPresetSinks, DeviceAttendsLikeTheCpuCache) {
  TQ_REQUIRE_GPU();
  for (int d : {64, 128, 256})
    for (int group : {1, 4})
      for (DecodeKernel kernel : {DecodeKernel::mma, DecodeKernel::simt}) {
        const double err = sink_attention_error("tq3", d, group, 1, false, kernel);
        const char* name = kernel == DecodeKernel::simt ? "simt" : "tensor core";
        std::printf("  tq3 sinks=1 d=%d group %d %s: relative error %.2e\n", d, group, name, err);
        EXPECT_LT(err, 1e-3) << "d=" << d << " group " << group << " " << name;
      }
  // Several sinks (tq4: 4 sinks, and 20 > one 16-token step), and an ordinary codec with
  // sinks (the CUDA-core kernel; it has no tensor-core kernel with sinks).
  for (DecodeKernel kernel : {DecodeKernel::mma, DecodeKernel::simt}) {
    EXPECT_LT(sink_attention_error("tq4", 128, 2, 4, false, kernel), 1e-3);
    EXPECT_LT(sink_attention_error("tq4", 64, 8, 20, false, kernel), 1e-3);
  }
  EXPECT_LT(sink_attention_error("turbo3", 128, 4, 2), 1e-3);
  EXPECT_THROW(sink_attention_error("turbo3", 128, 4, 2, false, DecodeKernel::mma), Error);
  // Pools and sink rows written by the CPU cache, uploaded.
  EXPECT_LT(sink_attention_error("tq3", 128, 4, 1, true, DecodeKernel::mma), 1e-3);
  EXPECT_LT(sink_attention_error("tq3.5", 256, 2, 3, true, DecodeKernel::mma), 1e-3);
  EXPECT_LT(sink_attention_error("tq3.5", 256, 2, 3, true, DecodeKernel::simt), 1e-3);
}

TEST(CudaPresetSinks, MissingPositionsOrSequenceIdsAreErrors) {
  TQ_REQUIRE_GPU();
  KvCacheConfig cfg = preset_config("tq3", 64, 2, 1);
  cfg.block_tokens = 32;  // one query head per KV head below
  DeviceKvCache dev(cfg);
  DeviceBuffer<float> k(std::vector<float>(2 * 64, 1.f));
  DeviceBuffer<int32_t> slots(std::vector<int32_t>{0});
  QuantizeParams p = testing::quantize_params(k.get(), k.get(), 1, slots.get());
  using testing::error_message;
  EXPECT_NE(error_message([&] { quantize_on_write(dev, p); }).find("positions"), std::string::npos);
  p.positions = slots.get();
  EXPECT_NE(error_message([&] { quantize_on_write(dev, p); }).find("seq_ids"), std::string::npos);
  p.seq_ids = slots.get();
  EXPECT_NO_THROW(quantize_on_write(dev, p));

  DeviceBuffer<float> q(std::vector<float>(2 * 64, 1.f)), out(2 * 64);
  DeviceBuffer<int32_t> lens(std::vector<int32_t>{1});
  DecodeParams d = testing::decode_params(q.get(), 1, 2, slots.get(), 1, lens.get(), 1, out.get());
  DeviceBuffer<uint8_t> ws(decode_workspace_bytes(dev, d));
  d.workspace = ws.get();
  d.workspace_bytes = decode_workspace_bytes(dev, d);
  EXPECT_NE(error_message([&] { decode_attention(dev, d); }).find("seq_ids"), std::string::npos);
}

TEST(CudaPresetConfig, PresetWithoutCalibratedCodecsIsAnError) {
  TQ_REQUIRE_GPU();
  KvCacheConfig c = testing::cache_config("tq3", "tq3", 64, 2, 16, 256);
  try {
    DeviceKvCache dev(c);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("calibrated"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tq::cuda
