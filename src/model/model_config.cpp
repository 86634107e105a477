// Model configuration from GGUF metadata. Facts follow llama.cpp's loader:
// - llama: RoPE on adjacent pairs (the converter permutes q/k rows for it); qwen2 and
//   gemma3: NEOX pairs (i, i + d/2).
// - gemma3: layer il is sliding unless il % pattern == pattern − 1 (pattern 6 unless the
//   metadata says otherwise); sliding layers use rope.freq_base_swa (10000 by default)
//   and no position scaling, global layers rope.freq_base and rope.scaling.factor;
//   queries are scaled by 1/sqrt(head_dim); embeddings by sqrt(dim); the converter has
//   already added 1 to every norm weight, so norms are plain x/rms(x)·w.
#include <cmath>
#include <string>

#include "model_loader.h"
#include "turboquant/error.h"
#include "turboquant/head_dim.h"

namespace tq::model {
namespace {

bool supported_arch(const std::string& arch) { return arch == "llama" || arch == "qwen2" || arch == "gemma3"; }

int positive_int(const gguf::GgufFile& f, const std::string& key) {
  const int64_t v = f.get_int(key);
  if (v <= 0 || v > (int64_t{1} << 30)) throw Error("GGUF key " + key + " has invalid value " + std::to_string(v));
  return static_cast<int>(v);
}

}  // namespace

ModelConfig read_model_config(const gguf::GgufFile& f) {
  ModelConfig c;
  c.arch = f.get_string("general.architecture");
  if (!supported_arch(c.arch)) {
    throw Error("unsupported model architecture '" + c.arch + "' (supported: llama, qwen2, gemma3)");
  }
  c.name = f.get_string("general.name", c.arch);
  const std::string a = c.arch + ".";
  c.n_layers = positive_int(f, a + "block_count");
  c.dim = positive_int(f, a + "embedding_length");
  c.ffn_dim = positive_int(f, a + "feed_forward_length");
  c.n_heads = positive_int(f, a + "attention.head_count");
  c.n_kv_heads = static_cast<int>(f.get_int(a + "attention.head_count_kv", c.n_heads));
  c.context = static_cast<int>(f.get_int(a + "context_length", 2048));
  c.head_dim = static_cast<int>(f.get_int(a + "attention.key_length", c.dim / c.n_heads));
  const int v_head_dim = static_cast<int>(f.get_int(a + "attention.value_length", c.head_dim));
  if (c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0) {
    throw Error("model has " + std::to_string(c.n_heads) + " query heads and " + std::to_string(c.n_kv_heads) +
                " KV heads: query heads must be a multiple of KV heads");
  }
  if (v_head_dim != c.head_dim) {
    throw Error("model has key head size " + std::to_string(c.head_dim) + " but value head size " +
                std::to_string(v_head_dim) + ": only equal sizes are supported");
  }
  // The model runs only with compiled attention paths (CPU and CUDA alike).
  if (!head_dim_compiled(c.head_dim)) throw_unsupported_head_dim("model", c.head_dim);
  c.rope_dim = static_cast<int>(f.get_int(a + "rope.dimension_count", c.head_dim));
  if (c.rope_dim <= 0 || c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    throw Error("invalid RoPE dimension " + std::to_string(c.rope_dim) + " for head size " + std::to_string(c.head_dim));
  }
  c.rope_neox = c.arch != "llama";
  c.rope_base = static_cast<float>(f.get_float(a + "rope.freq_base", 10000.0f));
  c.rope_base_local = static_cast<float>(f.get_float(a + "rope.freq_base_swa", 10000.0f));
  const std::string scaling = f.get_string(a + "rope.scaling.type", "linear");
  if (scaling != "linear" && scaling != "none") {
    throw Error("unsupported RoPE scaling type '" + scaling + "' (supported: none, linear)");
  }
  const float factor = static_cast<float>(f.get_float(a + "rope.scaling.factor", 0.0f));
  c.rope_freq_scale = (scaling == "none" || factor == 0.0f) ? 1.0f : 1.0f / factor;
  c.norm_eps = static_cast<float>(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5f));
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  c.attn_softcap = static_cast<float>(f.get_float(a + "attn_logit_softcapping", 0.0f));
  c.final_softcap = static_cast<float>(f.get_float(a + "final_logit_softcapping", 0.0f));
  c.layer_sliding.assign(c.n_layers, false);

  // The vocabulary size is the embedding's row count; the tokenizer must agree.
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd) throw Error("model file lacks tensor token_embd.weight");
  if (embd->shape.size() != 2 || embd->shape[0] != static_cast<uint64_t>(c.dim) || embd->shape[1] == 0 || embd->shape[1] > (uint64_t{1} << 30)) {
    throw Error("tensor token_embd.weight does not have shape [embedding_length, vocab]");
  }
  c.vocab = static_cast<int>(embd->shape[1]);
  c.tied_output = f.find_tensor("output.weight") == nullptr;

  if (c.arch == "gemma3") {
    c.qk_norm = true;
    c.post_norms = true;
    c.gelu = true;
    c.embed_scale = std::sqrt(static_cast<float>(c.dim));
    c.sliding_window = static_cast<int>(f.get_int(a + "attention.sliding_window", 0));
    if (c.sliding_window < 0) throw Error("negative gemma3.attention.sliding_window");
    if (c.sliding_window > 0) {
      const std::string key = a + "attention.sliding_window_pattern";
      if (f.has(key) && f.value_type(key) == gguf::ValueType::ARRAY) {
        // An explicit per-layer list (true: sliding), as llama.cpp also accepts.
        const std::vector<int64_t> flags = f.get_int_array(key);
        if (flags.size() != static_cast<size_t>(c.n_layers)) {
          throw Error(key + " has " + std::to_string(flags.size()) + " entries for " + std::to_string(c.n_layers) + " layers");
        }
        for (int il = 0; il < c.n_layers; ++il) c.layer_sliding[il] = flags[il] != 0;
      } else {
        // Every pattern-th layer is global: layer il slides unless il % pattern == pattern - 1.
        const int64_t pattern = f.get_int(key, 6);
        if (pattern < 0) throw Error(key + " is negative");
        for (int il = 0; il < c.n_layers; ++il) c.layer_sliding[il] = pattern == 0 || il % pattern < pattern - 1;
      }
    }
  }
  return c;
}

}  // namespace tq::model
