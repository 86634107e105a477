#pragma once
// A reference transformer runner for GGUF models (Llama family and Gemma 3) whose KV
// cache is the compressed tq::KvCache: every layer quantizes its K and V on write,
// prefill included, and attends from the compressed records.
//
// Weights stay in their GGUF type by default (the file is memory-mapped, no f32 copy):
// matrix products run integer kernels against activations rounded per block to 8 bits,
// as llama.cpp does. WeightFormat::f32 dequantizes every weight at load instead, so the
// products are plain BLAS calls, exact to the reference up to summation order.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "turboquant/attention.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/qk_balance.h"
#include "turboquant/session.h"
#include "turboquant/tokenizer.h"

namespace tq {

// Everything the forward pass needs to know about a model, read from GGUF metadata.
struct ModelConfig {
  std::string arch;  // GGUF general.architecture: "llama", "qwen2", "gemma3"
  std::string name;  // general.name, for messages
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int dim = 0;      // residual stream width (n_embd)
  int ffn_dim = 0;
  int vocab = 0;
  int context = 0;  // training context length
  int rope_dim = 0; // leading coordinates of each head that RoPE rotates
  bool rope_neox = false;           // NEOX pairs (i, i + rope_dim/2), else adjacent pairs (2i, 2i+1)
  float rope_base = 10000.0f;       // global (full-attention) layers
  float rope_base_local = 10000.0f; // sliding-window layers (Gemma 3)
  float rope_freq_scale = 1.0f;     // linear position scaling: 1 / rope.scaling.factor
  float norm_eps = 1e-5f;
  int sliding_window = 0;            // tokens a sliding layer sees, itself included; 0: none
  std::vector<bool> layer_sliding;   // per layer: true when the layer uses the window
  float attn_scale = 0.0f;           // softmax scale applied to q·k
  float attn_softcap = 0.0f;         // 0: none
  float final_softcap = 0.0f;        // 0: none
  float embed_scale = 1.0f;          // Gemma: sqrt(dim)
  bool qk_norm = false;              // RMSNorm on each q and k head (Gemma 3)
  bool post_norms = false;           // RMSNorm after attention and after the FFN (Gemma 3)
  bool gelu = false;                 // GeGLU (tanh GELU) instead of SwiGLU
  bool tied_output = false;          // output projection is the token embedding
};

// Optional hook into the forward pass, e.g. to capture the model's own K/V.
struct ForwardObserver {
  virtual ~ForwardObserver() = default;
  // After RoPE (and QK-norm, and the Q/K balance when set: q and k as the cache sees
  // them): q [n][n_heads][head_dim], k/v [n][n_kv_heads][head_dim],
  // positions pos0..pos0+n-1. q is not yet multiplied by the attention scale.
  virtual void on_qkv(int layer, int pos0, int n, const float* q, const float* k, const float* v) = 0;
  // The same rows before RoPE (after QK-norm); no balance applied yet.
  virtual void on_pre_rope(int /*layer*/, int /*pos0*/, int /*n*/, const float* /*q*/, const float* /*k*/,
                           const float* /*v*/) {}
};

struct ModelWeights;  // src/model/model_weights.h

// How the matrices are held: quantized (the file's own types, 8-bit activations for the
// quantized ones) or dequantized to f32 at load (4-8x the memory, slower decode).
enum class WeightFormat { quantized, f32 };
class ThreadPool;

class Model {
 public:
  // threads <= 0: all hardware threads. Throws tq::Error for a missing or malformed
  // file, an unsupported architecture or head size, a missing tensor or a tensor of
  // the wrong shape or a type the matrix kernels lack, and NaN/Inf weights.
  static std::unique_ptr<Model> load(const std::string& gguf_path, int threads = 0,
                                     WeightFormat weights = WeightFormat::quantized);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  int threads() const { return threads_; }
  // The worker threads forward() runs on, for callers' work between forward passes.
  ThreadPool& pool() { return *pool_; }
  // The loaded tensors (src/model/model_weights.h), for other backends to copy from.
  const ModelWeights& weights() const { return *weights_; }

  // A cache sized for this model with the given codecs (any name of the codec table).
  KvCacheConfig cache_config(const std::string& k_codec, const std::string& v_codec, int max_tokens) const;
  AttentionParams attention_params(int layer) const;

  // Runs n tokens at positions cache.length(0, seq) .. +n-1: every layer appends its
  // K/V to `cache` (quantized on write) and attends from it. logits: [n][vocab] when
  // all_logits, else [vocab] for the last token only.
  void forward(const int32_t* tokens, int n, KvCache& cache, int seq, float* logits, bool all_logits,
               ForwardObserver* obs = nullptr);

  // Query/key channel balancing (qk_balance.h): when set, every layer stores s ⊙ k in the
  // cache and attends with q / s, exactly equal scores. Off by default. A cache written
  // with one balance must be read with the same one. tq::Error on mismatched dimensions.
  void set_qk_balance(QkBalance balance);
  const QkBalance& qk_balance() const { return balance_; }
  // Measures the balance on `tokens` (an f16-cache forward pass, any balance set is
  // ignored meanwhile) and returns it; calibration_text() is a built-in default.
  QkBalance calibrate_qk_balance(const std::vector<int32_t>& tokens);
  // Calibrates on the built-in text and sets the result; returns the tokens used.
  int enable_qk_balance();

  // One forward pass over `tokens` with an f16 cache and no Q/K balance (calibration).
  void calibration_pass(const std::vector<int32_t>& tokens, ForwardObserver& obs);

  // The statistics of the calibrated presets (kv_profile.h) measured on `tokens` with an
  // f16 cache and no balance; model_hash and model_name are left for the caller.
  KvProfile measure_kv_profile(const std::vector<int32_t>& tokens);
  // The same over several texts, each its own pass from position 0 (one set of moments).
  KvProfile measure_kv_profile(const std::vector<std::vector<int32_t>>& texts);

 private:
  Model();
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<ThreadPool> pool_;
  int threads_ = 1;
  QkBalance balance_;
};

// Suspends a model's Q/K balance for a scope (calibration passes; the calibrated presets,
// which carry their own key transform) and restores it however the scope ends.
class QkBalancePause {
 public:
  explicit QkBalancePause(Model& m) : model_(m), saved_(m.qk_balance()) { model_.set_qk_balance(QkBalance()); }
  ~QkBalancePause() { model_.set_qk_balance(std::move(saved_)); }
  QkBalancePause(const QkBalancePause&) = delete;
  QkBalancePause& operator=(const QkBalancePause&) = delete;

 private:
  Model& model_;
  QkBalance saved_;
};

// Resolves "smollm2" / "gemma3" to the files scripts/setup_models.sh installs (in
// $TQ_MODEL_DIR, else ~/.cache/turboquant/models); any other string is a path.
// Throws tq::Error naming the setup script when a named model is missing.
std::string resolve_model_path(const std::string& name_or_path);

// The file's size and the hash of its header and of 16 evenly spaced 64 KiB samples of
// its tensor data (session.h), without loading the weights.
ModelIdentity model_identity(const std::string& gguf_path);

}  // namespace tq
