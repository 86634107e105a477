// tq::cuda::DeviceModel against tq::Model on tiny random GGUF models of each family
// (tests/model/test_model_tiny.h): the same prompt through the CPU runner (f32 weights)
// and the device runner (f16 weights, cuBLAS), same cache codec, logits and greedy
// continuations compared.
//
// Bounds. The device rounds every weight and every GEMM input to f16 (relative error
// u = 2^-11 ≈ 4.9e-4 each, random in sign), accumulating in f32. A product's relative
// error is then about u·√2 ≈ 7e-4, and the layers of these models (2-3, with norms in
// between that keep errors relative) add a few of those: a few 1e-3 of the logit scale.
// The bound is 2e-2 · max|logit| (kF16Bound), 5-10x the expected error. With a compressed
// codec the two caches quantize slightly different K/V, so a rounding step can flip on
// one side: q8_0's step is 1/127 of a block's max, the bound 5e-2 (kQ8Bound).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "model/test_model_tiny.h"
#include "turboquant/cuda_model.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/model.h"

namespace tq::cuda {
namespace {

using test::random_tokens;
using test::TinySpec;

constexpr float kF16Bound = 2e-2f;
constexpr float kQ8Bound = 5e-2f;
constexpr int kGreedy = 16;

std::unique_ptr<Model> load_tiny(const TinySpec& spec, const std::string& tag) {
  const test::TinyModel tiny = test::make_tiny_model(spec);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tq_cuda_tiny_" + tag + "_" + std::to_string(::getpid()) + ".gguf")).string();
  tiny.writer.write(path, true);
  auto m = Model::load(path, 2, WeightFormat::f32);
  std::filesystem::remove(path);
  return m;
}

int argmax(const float* x, int n) { return static_cast<int>(std::max_element(x, x + n) - x); }

// max |a - b| / max |b|.
float rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0, m = 1e-30f;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::abs(a[i] - b[i]));
    m = std::max(m, std::abs(b[i]));
  }
  return d / m;
}

struct RunResult {
  std::vector<float> prompt_logits;  // [n][vocab]
  std::vector<int32_t> greedy;
  std::vector<std::vector<float>> step_logits;  // the logits each greedy token was chosen from
  std::vector<float> last_logits;               // after the last greedy token
};

// The greedy continuations agree, or part at a near-tie: at the first step where they
// differ, the device's token scores within `tie` · max|logit| of the CPU's choice in the
// CPU's own logits (the two runners round differently: f16 weights, and f16 operands in
// the tensor-core attention, so a near-tied argmax can flip; after that the continuations
// differ by construction). A wrong step scores far below: logits move by O(max|logit|).
void expect_same_or_near_tie(const RunResult& cpu, const RunResult& gpu, float tie) {
  ASSERT_EQ(cpu.greedy.size(), gpu.greedy.size());
  for (size_t i = 0; i < cpu.greedy.size(); ++i) {
    if (cpu.greedy[i] == gpu.greedy[i]) continue;
    const std::vector<float>& l = cpu.step_logits.at(i);
    float scale = 1e-30f;
    for (float x : l) scale = std::max(scale, std::abs(x));
    const float gap = (l[cpu.greedy[i]] - l[gpu.greedy[i]]) / scale;
    std::printf("greedy tokens part at step %zu of %zu: CPU's top-1 leads the device's token by %.3g of max|logit|\n",
                i, cpu.greedy.size(), gap);
    EXPECT_LE(gap, tie) << "step " << i << ": the device chose token " << gpu.greedy[i] << ", the CPU " << cpu.greedy[i];
    return;
  }
}

RunResult run_cpu(Model& model, const std::vector<int32_t>& prompt, const KvCacheConfig& cfg) {
  const int V = model.config().vocab;
  KvCache cache(cfg);
  const int seq = cache.add_sequence();
  RunResult r;
  r.prompt_logits.resize(prompt.size() * V);
  model.forward(prompt.data(), static_cast<int>(prompt.size()), cache, seq, r.prompt_logits.data(), true);
  std::vector<float> logits(r.prompt_logits.end() - V, r.prompt_logits.end());
  for (int i = 0; i < kGreedy; ++i) {
    const int32_t next = argmax(logits.data(), V);
    r.greedy.push_back(next);
    r.step_logits.push_back(logits);
    model.forward(&next, 1, cache, seq, logits.data(), false);
  }
  r.last_logits = logits;
  return r;
}

RunResult run_cpu(Model& model, const std::vector<int32_t>& prompt, const std::string& codec, int max_tokens = 256) {
  return run_cpu(model, prompt, model.cache_config(codec, codec, max_tokens));
}

RunResult run_gpu(DeviceModel& dm, const KvCacheConfig& cfg, const std::vector<int32_t>& prompt) {
  const int V = dm.config().vocab;
  DeviceKvCache cache(cfg);
  DeviceSequences seqs(cache);
  const int seq = seqs.add_sequence();
  RunResult r;
  r.prompt_logits.resize(prompt.size() * V);
  dm.forward(prompt.data(), static_cast<int>(prompt.size()), cache, seqs, seq, r.prompt_logits.data(), true);
  std::vector<float> logits(r.prompt_logits.end() - V, r.prompt_logits.end());
  for (int i = 0; i < kGreedy; ++i) {
    const int32_t next = argmax(logits.data(), V);
    r.greedy.push_back(next);
    dm.forward(&next, 1, cache, seqs, seq, logits.data(), false);
  }
  r.last_logits = logits;
  EXPECT_EQ(seqs.length(seq), static_cast<int>(prompt.size()) + kGreedy);
  return r;
}

TinySpec spec_for(const std::string& family) {
  if (family == "llama") {
    TinySpec s = TinySpec::llama();  // adjacent-pair RoPE with divisors
    s.n_heads = 6;                   // 3 query heads per KV head: decode_attention padded to 4
    return s;
  }
  if (family == "qwen2") return TinySpec::qwen2();  // biases, tied output, NEOX
  TinySpec s = TinySpec::gemma3();  // QK-norm, post-norms, GeGLU, embed scale, final softcap
  s.sliding_window = 8;             // sliding layers 0 and 2: prompts of 20 and the greedy tokens run past it
  s.head_dim = 128;
  return s;
}

// The family's tiny model through both runners with `codec` on both sides; prints and
// returns max |Δlogit| / max |logit| over the prompt.
float compare_runners(const std::string& family, const std::string& codec, uint64_t seed, RunResult* cpu_out = nullptr,
                      RunResult* gpu_out = nullptr, bool graphs = false) {
  auto model = load_tiny(spec_for(family), family);
  const auto prompt = random_tokens(20, model->config().vocab, seed);
  const RunResult cpu = run_cpu(*model, prompt, codec);
  DeviceModel dm(*model);
  dm.use_graphs(graphs);
  const RunResult gpu = run_gpu(dm, model->cache_config(codec, codec, 256), prompt);
  const float d = rel_diff(gpu.prompt_logits, cpu.prompt_logits);
  std::printf("[%s] %s cache: max |dlogit| / max |logit| = %.3g over %zu prompt tokens\n", family.c_str(),
              codec.c_str(), d, prompt.size());
  if (cpu_out) *cpu_out = cpu;
  if (gpu_out) *gpu_out = gpu;
  return d;
}

class CudaModelFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaModelFamily, F16CacheMatchesCpu) {
  TQ_REQUIRE_GPU();
  RunResult cpu, gpu;
  EXPECT_LT(compare_runners(GetParam(), "f16", 7, &cpu, &gpu), kF16Bound);
  expect_same_or_near_tie(cpu, gpu, kF16Bound);
}

// Decode steps replayed from CUDA graphs give the same greedy tokens.
TEST_P(CudaModelFamily, GraphDecodeMatchesCpu) {
  TQ_REQUIRE_GPU();
  RunResult cpu, gpu;
  EXPECT_LT(compare_runners(GetParam(), "f16", 15, &cpu, &gpu, true), kF16Bound);
  expect_same_or_near_tie(cpu, gpu, kF16Bound);
}

TEST_P(CudaModelFamily, Q8CacheMatchesCpu) {
  TQ_REQUIRE_GPU();
  EXPECT_LT(compare_runners(GetParam(), "q8_0", 8), kQ8Bound);
}

INSTANTIATE_TEST_SUITE_P(Families, CudaModelFamily, ::testing::Values("llama", "qwen2", "gemma3"));

// A compressed rotated codec runs end to end (same codec on both sides; the looser
// bound of a 3-bit cache, whose rounding can flip between the two runs).
TEST(CudaModel, Turbo3CacheNearCpu) {
  TQ_REQUIRE_GPU();
  EXPECT_LT(compare_runners("llama", "turbo3", 9), 0.15f);
}

// Graph-replayed steps against direct ones on the device, a compressed codec: the same
// kernels, only the attention's split count differs (the graph's is for the whole cache).
// That changes the f32 summation order of the attention output, which can flip the f16
// rounding of a later GEMM input (2^-11 ≈ 4.9e-4 relative per element): the bound allows a
// few such flips (the H200 measured 3.0e-4), not a wrong step (which moves logits by O(1)).
TEST(CudaModel, GraphStepsMatchDirectSteps) {
  TQ_REQUIRE_GPU();
  auto model = load_tiny(spec_for("llama"), "graph");
  const auto prompt = random_tokens(20, model->config().vocab, 16);
  DeviceModel dm(*model);
  const RunResult direct = run_gpu(dm, model->cache_config("turbo3", "turbo3", 256), prompt);
  dm.use_graphs(true);
  const RunResult graphs = run_gpu(dm, model->cache_config("turbo3", "turbo3", 256), prompt);
  dm.drop_graphs();
  EXPECT_EQ(graphs.greedy, direct.greedy);
  EXPECT_LT(rel_diff(graphs.last_logits, direct.last_logits), 2e-3f);
}

// The model's Q/K balance (k·s stored, q/s used) is carried to the device.
TEST(CudaModel, QkBalanceMatchesCpu) {
  TQ_REQUIRE_GPU();
  auto model = load_tiny(spec_for("qwen2"), "balance");
  const ModelConfig& c = model->config();
  Rng rng(3);
  std::vector<float> s(size_t(c.n_layers) * c.n_kv_heads * c.head_dim);
  for (float& v : s) v = 0.5f + 1.5f * static_cast<float>(rng.uniform());
  model->set_qk_balance(QkBalance(c.n_layers, c.n_kv_heads, c.head_dim, s));
  const auto prompt = random_tokens(12, c.vocab, 10);
  const RunResult cpu = run_cpu(*model, prompt, "q8_0");
  DeviceModel dm(*model);
  const RunResult gpu = run_gpu(dm, model->cache_config("q8_0", "q8_0", 256), prompt);
  EXPECT_LT(rel_diff(gpu.prompt_logits, cpu.prompt_logits), kQ8Bound);
}

// Two sequences sharing the pool, decoded in one step, match two CPU sequences.
TEST(CudaModel, BatchedDecodeMatchesCpu) {
  TQ_REQUIRE_GPU();
  auto model = load_tiny(spec_for("llama"), "batch");
  const int V = model->config().vocab;
  const std::vector<std::vector<int32_t>> prompts = {random_tokens(9, V, 11), random_tokens(37, V, 12)};
  const std::vector<int32_t> next = {5, 17};
  KvCache cpu_cache(model->cache_config("f16", "f16", 256));
  DeviceModel dm(*model);
  DeviceKvCache cache(model->cache_config("f16", "f16", 256));
  DeviceSequences seqs(cache);
  std::vector<float> want(2 * V), got(2 * V), scratch(V);
  int ids[2];
  for (int b = 0; b < 2; ++b) {
    const int s = cpu_cache.add_sequence();
    model->forward(prompts[b].data(), static_cast<int>(prompts[b].size()), cpu_cache, s, scratch.data(), false);
    model->forward(&next[b], 1, cpu_cache, s, want.data() + b * V, false);
    ids[b] = seqs.add_sequence();
    dm.forward(prompts[b].data(), static_cast<int>(prompts[b].size()), cache, seqs, ids[b], scratch.data(), false);
  }
  dm.decode_batch(next.data(), ids, 2, cache, seqs, got.data());
  EXPECT_LT(rel_diff(got, want), kF16Bound);
  EXPECT_EQ(seqs.length(ids[0]), 10);
  EXPECT_EQ(seqs.length(ids[1]), 38);
}

// Far past the sliding window (5 tokens against a prompt of 300, which prefills in two
// chunks of rows, then 16 decode steps, directly and as CUDA graphs): the sliding layers
// attend to each row's last 5 tokens on the device as on the CPU.
TEST(CudaModel, SlidingWindowFarPastItsEnd) {
  TQ_REQUIRE_GPU();
  TinySpec spec = spec_for("gemma3");
  spec.sliding_window = 5;
  auto model = load_tiny(spec, "window");
  const auto prompt = random_tokens(300, model->config().vocab, 13);
  const RunResult cpu = run_cpu(*model, prompt, "f16", 512);
  DeviceModel dm(*model);
  for (bool graphs : {false, true}) {
    dm.use_graphs(graphs);
    const RunResult gpu = run_gpu(dm, model->cache_config("f16", "f16", 512), prompt);
    dm.drop_graphs();
    const float d = rel_diff(gpu.prompt_logits, cpu.prompt_logits);
    std::printf("[gemma3, window 5%s] f16 cache: max |dlogit| / max |logit| = %.3g over %zu prompt tokens\n",
                graphs ? ", graphs" : "", d, prompt.size());
    EXPECT_LT(d, kF16Bound) << (graphs ? "graphs" : "direct");
    EXPECT_EQ(gpu.greedy, cpu.greedy) << (graphs ? "graphs" : "direct");
    EXPECT_LT(rel_diff(gpu.last_logits, cpu.last_logits), kF16Bound) << (graphs ? "graphs" : "direct");
  }
}

// A calibrated preset with its keys in RoPE frames, end to end: profile measured on one
// random stream, frames of 32 positions (the device's smallest), a prompt of 70 tokens and
// 16 greedy steps, so prefill and decode cross four frame edges. Both caches hold the same
// records (test_cuda_frames checks them byte for byte); the two runs differ only by the
// device's f16 rounding of weights and GEMM inputs, which can flip a 3-bit rounding on one
// side, hence turbo3's bound. Without the frame turn on either side (a query scored against
// keys of another frame) logits move by O(max|logit|). Direct steps and graph replays.
TEST(CudaModel, PresetInRopeFramesNearCpu) {
  TQ_REQUIRE_GPU();
  auto model = load_tiny(spec_for("llama"), "frames");
  const int V = model->config().vocab;
  const KvProfile profile = model->measure_kv_profile(random_tokens(96, V, 21));
  CalibrationOptions opt;
  opt.context = 256;
  opt.rope_range = 32;
  KvCacheConfig cfg = model->cache_config("tq3", "tq3", 256);
  attach_preset_codecs(cfg, &profile, opt, "");
  ASSERT_NE(cfg.calibrated, nullptr);
  ASSERT_EQ(cfg.calibrated->key_frames.range(), 32);
  const auto prompt = random_tokens(70, V, 22);

  const RunResult cpu = run_cpu(*model, prompt, cfg);
  DeviceModel dm(*model);
  for (bool graphs : {false, true}) {
    dm.use_graphs(graphs);
    const RunResult gpu = run_gpu(dm, cfg, prompt);
    dm.drop_graphs();
    const float d = rel_diff(gpu.prompt_logits, cpu.prompt_logits);
    std::printf("[llama, tq3 in frames of 32%s] max |dlogit| / max |logit| = %.3g over %zu prompt tokens\n",
                graphs ? ", graphs" : "", d, prompt.size());
    EXPECT_LT(d, 0.15f) << (graphs ? "graphs" : "direct");
    expect_same_or_near_tie(cpu, gpu, 0.15f);
  }
}

TEST(CudaModel, FullPoolRefused) {
  TQ_REQUIRE_GPU();
  auto model = load_tiny(spec_for("qwen2"), "full");
  DeviceModel dm(*model);
  DeviceKvCache cache(model->cache_config("f16", "f16", 32));  // one block
  DeviceSequences seqs(cache);
  const int seq = seqs.add_sequence();
  const auto prompt = random_tokens(33, model->config().vocab, 14);
  std::vector<float> logits(model->config().vocab);
  EXPECT_THROW(dm.forward(prompt.data(), 33, cache, seqs, seq, logits.data(), false), Error);
}

}  // namespace
}  // namespace tq::cuda
