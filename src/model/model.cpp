// Model: load (config + weights + tokenizer) and the forward pass with the
// compressed KV cache in the loop. One layer, for a chunk of tokens:
//   h = norm(x); q,k,v = h·W (+b); [QK-norm]; RoPE; cache.append(k, v); o = attend(q)
//   x += [post-norm](o·Wo);  h = norm(x); x += [post-norm](act(h·Wg) ⊙ (h·Wu)) · Wd
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "model_loader.h"
#include "ops.h"
#include "qmatmul.h"
#include "turboquant/error.h"
#include "turboquant/thread_pool.h"

namespace tq {
namespace {

// Tokens per pass through the layers: bounds the activation buffers for long prompts
// while keeping the matrix products large enough for BLAS to run at full speed.
constexpr int kChunkTokens = 256;

// Activation buffers for one chunk, reused across layers.
struct Workspace {
  std::vector<float> x, h, q, k, v, att, o, gate, up;
  void resize(const ModelConfig& c, int n) {
    const size_t N = static_cast<size_t>(n);
    x.resize(N * c.dim);
    h.resize(N * c.dim);
    q.resize(N * c.n_heads * c.head_dim);
    k.resize(N * c.n_kv_heads * c.head_dim);
    v.resize(N * c.n_kv_heads * c.head_dim);
    att.resize(N * c.n_heads * c.head_dim);
    o.resize(N * c.dim);
    gate.resize(N * c.ffn_dim);
    up.resize(N * c.ffn_dim);
  }
};

const float* or_null(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

}  // namespace

Model::Model() = default;
Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& gguf_path, int threads, WeightFormat weights) {
  auto mapped = std::make_shared<const gguf::GgufFile>(gguf::GgufFile::open(gguf_path));
  const gguf::GgufFile& file = *mapped;
  std::unique_ptr<Model> m(new Model());
  m->config_ = model::read_model_config(file);
  m->tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(file));
  if (m->tokenizer_->vocab_size() > m->config_.vocab) {
    throw Error("tokenizer has " + std::to_string(m->tokenizer_->vocab_size()) + " tokens but token_embd.weight only " +
                std::to_string(m->config_.vocab) + " rows");
  }
  m->weights_ = std::make_unique<ModelWeights>(model::load_weights(std::move(mapped), m->config_, weights));
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m->threads_ = threads > 0 ? threads : hw;
  model::use_single_threaded_blas();
  m->pool_ = std::make_unique<ThreadPool>(m->threads_);
  return m;
}

KvCacheConfig Model::cache_config(const std::string& k_codec, const std::string& v_codec, int max_tokens) const {
  KvCacheConfig c;
  c.n_layers = config_.n_layers;
  c.n_kv_heads = config_.n_kv_heads;
  c.head_dim = config_.head_dim;
  c.k_codec = k_codec;
  c.v_codec = v_codec;
  c.max_tokens = max_tokens;
  return c;
}

AttentionParams Model::attention_params(int layer) const {
  if (layer < 0 || layer >= config_.n_layers) throw Error("layer " + std::to_string(layer) + " out of range");
  AttentionParams p;
  p.n_heads = config_.n_heads;
  p.scale = config_.attn_scale;
  p.window = config_.layer_sliding[layer] ? config_.sliding_window : 0;
  p.softcap = config_.attn_softcap;
  return p;
}

void Model::forward(const int32_t* tokens, int n, KvCache& cache, int seq, float* logits, bool all_logits,
                    ForwardObserver* obs) {
  const ModelConfig& c = config_;
  const ModelWeights& W = *weights_;
  if (n <= 0) throw Error("forward needs at least one token, got " + std::to_string(n));
  for (int i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab) {
      throw Error("token id " + std::to_string(tokens[i]) + " outside the vocabulary [0, " + std::to_string(c.vocab) + ")");
    }
  }
  Workspace ws;
  for (int start = 0; start < n; start += kChunkTokens) {
    const int m = std::min(kChunkTokens, n - start);
    const int pos0 = cache.length(0, seq);
    ws.resize(c, m);
    for (int t = 0; t < m; ++t) {
      float* x = ws.x.data() + static_cast<size_t>(t) * c.dim;
      model::qmatrix_row(W.tok_embd, tokens[start + t], x);
      for (int i = 0; i < c.dim; ++i) x[i] *= c.embed_scale;
    }
    // Sliding layers (Gemma 3) use their own RoPE base and no position scaling.
    const model::RopeTable rope_global =
        model::make_rope_table(pos0, m, c.rope_dim, c.rope_base, c.rope_freq_scale, or_null(W.rope_freqs));
    const model::RopeTable rope_local = model::make_rope_table(pos0, m, c.rope_dim, c.rope_base_local, 1.0f, nullptr);

    for (int il = 0; il < c.n_layers; ++il) {
      const LayerWeights& L = W.layers[il];
      model::rms_norm_to(ws.x.data(), ws.h.data(), m, c.dim, L.attn_norm.data(), c.norm_eps);
      const model::QProduct qkv[] = {{&L.wq, or_null(L.bq), ws.q.data()},
                                     {&L.wk, or_null(L.bk), ws.k.data()},
                                     {&L.wv, or_null(L.bv), ws.v.data()}};
      model::qmatmul_many(ws.h.data(), m, qkv, 3, pool_.get());
      if (c.qk_norm) {
        model::rms_norm(ws.q.data(), m * c.n_heads, c.head_dim, L.q_norm.data(), c.norm_eps);
        model::rms_norm(ws.k.data(), m * c.n_kv_heads, c.head_dim, L.k_norm.data(), c.norm_eps);
      }
      if (obs) obs->on_pre_rope(il, pos0, m, ws.q.data(), ws.k.data(), ws.v.data());
      const model::RopeTable& rope = c.layer_sliding[il] ? rope_local : rope_global;
      model::apply_rope(ws.q.data(), m, c.n_heads, c.head_dim, rope, c.rope_neox);
      model::apply_rope(ws.k.data(), m, c.n_kv_heads, c.head_dim, rope, c.rope_neox);
      balance_.apply(il, m, c.n_heads, ws.q.data(), ws.k.data());
      if (obs) obs->on_qkv(il, pos0, m, ws.q.data(), ws.k.data(), ws.v.data());

      cache.append(il, seq, m, ws.k.data(), ws.v.data(), pool_.get());
      attend(cache, il, seq, ws.q.data(), m, pos0, attention_params(il), ws.att.data(), pool_.get());

      model::qmatmul(ws.att.data(), m, L.wo, or_null(L.bo), ws.o.data(), pool_.get());
      if (c.post_norms) model::rms_norm(ws.o.data(), m, c.dim, L.attn_post_norm.data(), c.norm_eps);
      for (size_t i = 0; i < ws.x.size(); ++i) ws.x[i] += ws.o[i];

      model::rms_norm_to(ws.x.data(), ws.h.data(), m, c.dim, L.ffn_norm.data(), c.norm_eps);
      const model::QProduct gate_up[] = {{&L.w_gate, nullptr, ws.gate.data()}, {&L.w_up, nullptr, ws.up.data()}};
      model::qmatmul_many(ws.h.data(), m, gate_up, 2, pool_.get());
      const size_t ffn_count = static_cast<size_t>(m) * c.ffn_dim;
      if (c.gelu) {
        model::geglu(ws.gate.data(), ws.up.data(), ffn_count);
      } else {
        model::swiglu(ws.gate.data(), ws.up.data(), ffn_count);
      }
      model::qmatmul(ws.gate.data(), m, L.w_down, nullptr, ws.o.data(), pool_.get());
      if (c.post_norms) model::rms_norm(ws.o.data(), m, c.dim, L.ffn_post_norm.data(), c.norm_eps);
      for (size_t i = 0; i < ws.x.size(); ++i) ws.x[i] += ws.o[i];
    }

    // Logits for every token of the chunk, or only for the last token of the call.
    const bool last_chunk = start + m == n;
    if (!all_logits && !last_chunk) continue;
    const int first = all_logits ? 0 : m - 1;
    const int rows = m - first;
    model::rms_norm_to(ws.x.data() + static_cast<size_t>(first) * c.dim, ws.h.data(), rows, c.dim,
                       W.output_norm.data(), c.norm_eps);
    float* out = all_logits ? logits + static_cast<size_t>(start) * c.vocab : logits;
    model::qmatmul(ws.h.data(), rows, W.output_matrix(), nullptr, out, pool_.get());
    if (c.final_softcap > 0.0f) model::softcap(out, static_cast<size_t>(rows) * c.vocab, c.final_softcap);
  }
}

}  // namespace tq
