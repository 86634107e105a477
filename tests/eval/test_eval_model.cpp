// `tq eval` on the real runner: a tiny random Gemma 3-style model written to GGUF
// (tests/model/test_model_tiny.h) through make_eval_model, so the adapter, the
// observer bridge and sliding-window layers are exercised without a real model. Also
// checks that the attention-fidelity protocol computes what the engine's attend()
// computes on the same captured K/V.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "model/test_model_tiny.h"
#include "turboquant/attention.h"
#include "turboquant/eval.h"
#include "turboquant/eval_model.h"
#include "turboquant/kv_cache.h"
#include "turboquant/model.h"

namespace tq {
namespace {

std::unique_ptr<Model> load_tiny_gemma() {
  const test::TinyModel tiny = test::make_tiny_model(test::TinySpec::gemma3());
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tq_eval_tiny_" + std::to_string(::getpid()) + ".gguf")).string();
  tiny.writer.write(path, /*overwrite=*/true);
  auto m = Model::load(path, 2);
  std::filesystem::remove(path);
  return m;
}

std::string prose() {
  std::string s;
  for (int p = 0; p < 30; ++p)
    s += "Paragraph " + std::to_string(p) + ": the cat sat, and a dog sat by the cat.\n\n";
  return s;
}

// Captures one layer's q/k/v from the forward pass.
struct OneLayer : ForwardObserver {
  int layer = 0, n_heads = 0, n_kv = 0, hd = 0;
  std::vector<float> q, k, v;
  void on_qkv(int l, int, int n, const float* qp, const float* kp, const float* vp) override {
    if (l != layer) return;
    q.insert(q.end(), qp, qp + size_t(n) * n_heads * hd);
    k.insert(k.end(), kp, kp + size_t(n) * n_kv * hd);
    v.insert(v.end(), vp, vp + size_t(n) * n_kv * hd);
  }
};

TEST(EvalModel, FidelityProtocolMatchesTheEngineAttention) {
  auto model = load_tiny_gemma();
  const ModelConfig& c = model->config();
  for (int layer = 0; layer < c.n_layers; ++layer) {  // layers 0, 2 slide; 1 is global
    for (const char* codec : {"f16", "turbo3"}) {
      KvCacheConfig cfg = model->cache_config(codec, codec, 64);
      cfg.seed = 11;
      KvCache cache(cfg);
      const int seq = cache.add_sequence();
      OneLayer obs;
      obs.layer = layer;
      obs.n_heads = c.n_heads;
      obs.n_kv = c.n_kv_heads;
      obs.hd = c.head_dim;
      std::vector<int32_t> toks;
      for (int i = 0; i < 20; ++i) toks.push_back(3 + (i * 7) % 200);
      std::vector<float> logits(c.vocab);
      model->forward(toks.data(), 20, cache, seq, logits.data(), false, &obs);

      const AttentionParams p = model->attention_params(layer);
      const AttentionSpec spec{p.n_heads, c.n_kv_heads, c.head_dim, p.scale, p.window, p.softcap};
      LayerCapture cap;
      cap.n_tokens = 20;
      cap.keys = obs.k;
      cap.values = obs.v;
      cap.query_pos = {19};
      const size_t row = size_t(c.n_heads) * c.head_dim;
      cap.queries.assign(obs.q.end() - static_cast<std::ptrdiff_t>(row), obs.q.end());
      const std::vector<float> mine = attention_outputs(spec, cap, layer, codec, codec, 11);
      std::vector<float> engine(row);
      attend_reference(cache, layer, seq, cap.queries.data(), 1, 19, p, engine.data());
      for (size_t i = 0; i < row; ++i)
        EXPECT_NEAR(mine[i], engine[i], 1e-4f * (1 + std::abs(engine[i])))
            << "layer " << layer << " codec " << codec << " at " << i;
    }
  }
}

TEST(EvalModel, EndToEndOnATinyGguf) {
  auto eval_model = make_eval_model(load_tiny_gemma());
  const EvalModelInfo& info = eval_model->info();
  ASSERT_EQ(info.n_layers, 3);
  EXPECT_EQ(info.attention[0].window, 5);
  EXPECT_EQ(info.attention[1].window, 0);
  EvalOptions opt;
  opt.plans = make_plans({"f16", "q8_0", "turbo2"}, {}, {}, {-1}, "q8_0", info.n_layers);
  ASSERT_EQ(opt.plans[2].label(), "turbo2 +q8_0@2");
  opt.ctx = 48;
  opt.windows = 2;
  opt.decode_tail = 4;
  opt.attention_queries = 4;
  opt.passkey_lengths = {400};
  opt.passkey_depths = {0.5};
  opt.passkey_answer_tokens = 2;
  const EvalReport rep = run_eval(*eval_model, prose(), opt);
  ASSERT_EQ(rep.rows.size(), 3u);
  EXPECT_EQ(rep.rows[0].tokens, 2u * 47);
  EXPECT_EQ(rep.rows[0].kl, 0.0);
  EXPECT_GT(rep.rows[1].kl, 0.0);
  EXPECT_LT(rep.rows[1].kl, rep.rows[2].kl);
  EXPECT_GT(rep.rows[1].attn_cosine, rep.rows[2].attn_cosine);
  EXPECT_GT(rep.rows[1].attn_cosine, 0.999);
  EXPECT_GT(rep.rows[0].cache_bytes, rep.rows[2].cache_bytes);
  EXPECT_EQ(rep.rows[2].passkey.size(), 1u);
  EXPECT_GT(rep.rows[0].decode_tps, 0.0);
}

}  // namespace
}  // namespace tq
