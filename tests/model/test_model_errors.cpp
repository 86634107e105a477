// Bad inputs to tq::Model give a tq::Error that names the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "test_model_tiny.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/model.h"

namespace tq {
namespace {

using test::TinySpec;

// Writes the tiny model for `spec`, loads it and returns the error message ("" when it
// loaded).
std::string load_error(const TinySpec& spec) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("tq_bad_model_" + std::to_string(::getpid()) + ".gguf")).string();
  test::make_tiny_model(spec).writer.write(path, true);
  std::string msg;
  try {
    Model::load(path, 1);
  } catch (const Error& e) {
    msg = e.what();
  }
  std::filesystem::remove(path);
  return msg;
}

#define EXPECT_MENTIONS(msg, what) EXPECT_NE((msg).find(what), std::string::npos) << "message: " << (msg)

TEST(ModelErrors, ValidTinyModelsLoad) {
  EXPECT_EQ(load_error(TinySpec::llama()), "");
  EXPECT_EQ(load_error(TinySpec::qwen2()), "");
  EXPECT_EQ(load_error(TinySpec::gemma3()), "");
}

TEST(ModelErrors, MissingFile) {
  try {
    Model::load("/nonexistent/dir/model.gguf");
    FAIL() << "expected tq::Error";
  } catch (const Error& e) {
    EXPECT_MENTIONS(std::string(e.what()), "/nonexistent/dir/model.gguf");
  }
}

TEST(ModelErrors, UnsupportedArchitecture) {
  TinySpec s = TinySpec::llama();
  s.arch = "gpt2";
  EXPECT_MENTIONS(load_error(s), "gpt2");
}

TEST(ModelErrors, UnsupportedHeadSize) {
  TinySpec s = TinySpec::llama();
  s.head_dim = 48;
  EXPECT_MENTIONS(load_error(s), "head size 48");
}

TEST(ModelErrors, HeadsNotMultipleOfKvHeads) {
  TinySpec s = TinySpec::llama();
  s.n_heads = 3;
  EXPECT_MENTIONS(load_error(s), "multiple");
}

TEST(ModelErrors, MissingTensor) {
  TinySpec s = TinySpec::gemma3();
  s.omit = "blk.1.attn_q_norm.weight";
  EXPECT_MENTIONS(load_error(s), "blk.1.attn_q_norm.weight");
  s = TinySpec::llama();
  s.omit = "output_norm.weight";
  EXPECT_MENTIONS(load_error(s), "output_norm.weight");
}

TEST(ModelErrors, WrongTensorShape) {
  TinySpec s = TinySpec::llama();
  s.swap_axes = "blk.0.ffn_down.weight";
  const std::string msg = load_error(s);
  EXPECT_MENTIONS(msg, "blk.0.ffn_down.weight");
  EXPECT_MENTIONS(msg, "shape");
}

TEST(ModelErrors, NonFiniteWeight) {
  TinySpec s = TinySpec::qwen2();
  s.poison = "blk.1.attn_k.bias";
  const std::string msg = load_error(s);
  EXPECT_MENTIONS(msg, "blk.1.attn_k.bias");
  EXPECT_MENTIONS(msg, "non-finite");
}

// A quantized matrix kept quantized is still checked at load: a NaN block scale fails
// with the tensor's name.
TEST(ModelErrors, NonFiniteQuantizedWeight) {
  TinySpec s = TinySpec::llama();
  s.matrix_type = gguf::GgmlType::Q8_0;
  s.poison = "blk.0.ffn_up.weight";
  const std::string msg = load_error(s);
  EXPECT_MENTIONS(msg, "blk.0.ffn_up.weight");
  EXPECT_MENTIONS(msg, "non-finite");
}

// A weight type without matrix kernels fails at load naming the tensor and the type.
TEST(ModelErrors, UnsupportedWeightType) {
  TinySpec s = TinySpec::llama();
  s.dim = 256;
  s.as_q2_k = "blk.1.attn_q.weight";
  const std::string msg = load_error(s);
  EXPECT_MENTIONS(msg, "blk.1.attn_q.weight");
  EXPECT_MENTIONS(msg, "Q2_K");
}

TEST(ModelErrors, BadForwardInputs) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("tq_bad_fwd_" + std::to_string(::getpid()) + ".gguf")).string();
  test::make_tiny_model(TinySpec::llama()).writer.write(path, true);
  auto model = Model::load(path, 1);
  std::filesystem::remove(path);
  KvCache cache(model->cache_config("f16", "f16", 32));
  const int seq = cache.add_sequence();
  std::vector<float> logits(model->config().vocab);
  const int32_t bad[] = {3, model->config().vocab};
  try {
    model->forward(bad, 2, cache, seq, logits.data(), false);
    FAIL() << "expected tq::Error";
  } catch (const Error& e) {
    EXPECT_MENTIONS(std::string(e.what()), std::to_string(model->config().vocab));
  }
  EXPECT_EQ(cache.length(0, seq), 0) << "a rejected call must not touch the cache";
  const int32_t neg[] = {-1};
  EXPECT_THROW(model->forward(neg, 1, cache, seq, logits.data(), false), Error);
  EXPECT_THROW(model->forward(bad, 0, cache, seq, logits.data(), false), Error);
  EXPECT_THROW(model->attention_params(model->config().n_layers), Error);
  EXPECT_THROW(KvCache(model->cache_config("nosuchcodec", "f16", 32)), Error);
  // More tokens than the cache holds: the cache refuses.
  std::vector<int32_t> many(40, 5);
  EXPECT_THROW(model->forward(many.data(), 40, cache, seq, logits.data(), false), Error);
}

TEST(ModelErrors, UnknownModelName) {
  EXPECT_THROW(resolve_model_path("/no/such/file.gguf"), Error);
}

}  // namespace
}  // namespace tq
