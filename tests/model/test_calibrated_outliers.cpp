// The calibrated presets on a model with extreme key outliers: a Qwen2-family model whose
// key biases make key norms tens of times the value norms (as measured in the Qwen2.5
// family, where uniform 3-4-bit key caches collapse). Calibrated on one random token
// stream, judged on another: the presets must stay close to f16 and beat Hadamard q4_0.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "test_model_tiny.h"
#include "turboquant/eval_metrics.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/model.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

constexpr int kTokens = 192;

std::vector<int32_t> tokens(int vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(kTokens);
  for (int32_t& x : t) x = static_cast<int32_t>(rng.below(vocab));
  return t;
}

std::vector<float> logits(Model& model, const std::vector<int32_t>& t, const KvCacheConfig& cfg) {
  KvCache cache(cfg);
  const int seq = cache.add_sequence();
  std::vector<float> out(t.size() * model.config().vocab);
  model.forward(t.data(), static_cast<int>(t.size()), cache, seq, out.data(), true);
  return out;
}

double mean_kl(const std::vector<float>& ref, const std::vector<float>& test, int vocab) {
  double kl = 0;
  const size_t n = ref.size() / vocab;
  for (size_t t = 0; t < n; ++t) kl += kl_divergence(ref.data() + t * vocab, test.data() + t * vocab, vocab);
  return kl / static_cast<double>(n);
}

double norm_ratio(Model& model, const std::vector<int32_t>& t) {  // mean ‖k‖ / mean ‖v‖, all layers
  struct Norms : ForwardObserver {
    int d = 0;
    double k = 0, v = 0;
    void on_qkv(int, int, int n, const float*, const float* kk, const float* vv) override {
      for (int i = 0; i < n * d; i += d) {
        double a = 0, b = 0;
        for (int j = 0; j < d; ++j) a += double(kk[i + j]) * kk[i + j], b += double(vv[i + j]) * vv[i + j];
        k += std::sqrt(a), v += std::sqrt(b);
      }
    }
  } obs;
  obs.d = model.config().head_dim;
  KvCache cache(model.cache_config("f16", "f16", kTokens));
  const int seq = cache.add_sequence();
  std::vector<float> out(model.config().vocab);
  model.forward(t.data(), static_cast<int>(t.size()), cache, seq, out.data(), false, &obs);
  return obs.k / obs.v;
}

TEST(CalibratedOutliers, PresetsHoldWhereUniformKeyCodecsDegrade) {
  test::TinySpec spec = test::TinySpec::qwen2();
  spec.k_bias_scale = 40.f;
  const test::TinyModel tiny = test::make_tiny_model(spec);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("tq_outliers_" + std::to_string(::getpid()) + ".gguf")).string();
  tiny.writer.write(path, true);
  auto model = Model::load(path, 2);
  std::filesystem::remove(path);
  const int vocab = model->config().vocab;
  const std::vector<int32_t> calib = tokens(vocab, 1), judge = tokens(vocab, 2);

  const double ratio = norm_ratio(*model, judge);
  EXPECT_GT(ratio, 20.0) << "the model must have extreme key outliers for this test to mean anything";

  const KvProfile profile = model->measure_kv_profile(calib);
  const std::vector<float> ref = logits(*model, judge, model->cache_config("f16", "f16", kTokens));
  const double kl_q4h = mean_kl(ref, logits(*model, judge, model->cache_config("q4_0h", "q4_0h", kTokens)), vocab);
  const double kl_turbo3 = mean_kl(ref, logits(*model, judge, model->cache_config("turbo3", "turbo3", kTokens)), vocab);
  std::printf("key/value norm ratio %.1f; KL q4_0h %.5f, turbo3 %.5f\n", ratio, kl_q4h, kl_turbo3);
  for (const char* name : {"tq3", "tq4"}) {
    CalibrationOptions opt;
    opt.context = kTokens;
    KvCacheConfig cfg = model->cache_config(name, name, kTokens);
    cfg.calibrated = std::make_shared<CalibratedCodecs>(build_calibrated(profile, *find_preset(name), opt));
    cfg.sink_tokens = cfg.calibrated->sink_tokens;
    const double kl = mean_kl(ref, logits(*model, judge, cfg), vocab);
    std::printf("%s (%.2f bits/value): KL %.5f\n", name, cfg.calibrated->bits_per_value(), kl);
    EXPECT_LT(kl, kl_q4h) << name << " must beat q4_0h (4.5 bits) on outlier keys";
    EXPECT_LT(kl, kl_turbo3) << name << " must beat turbo3 on outlier keys";
  }
}

}  // namespace
}  // namespace tq
