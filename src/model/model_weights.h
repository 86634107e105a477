#pragma once
// The weights of one model. Matrices stay in their GGUF type, viewing the memory-mapped
// file (qmatmul.h), or hold an f32 copy when the model was loaded with WeightFormat::f32;
// they keep the GGUF layout: `out` rows of `in` elements. Norm weights and biases are
// small and always f32. Optional tensors are empty.
#include <memory>
#include <vector>

#include "qmatmul.h"
#include "turboquant/gguf.h"

namespace tq {

struct LayerWeights {
  std::vector<float> attn_norm;
  model::QMatrix wq, wk, wv, wo;
  std::vector<float> bq, bk, bv, bo;       // optional biases (Qwen2-style)
  std::vector<float> q_norm, k_norm;       // per-head RMSNorm weights (Gemma 3)
  std::vector<float> attn_post_norm;       // Gemma 3
  std::vector<float> ffn_norm;
  model::QMatrix w_gate, w_up, w_down;
  std::vector<float> ffn_post_norm;        // Gemma 3
};

struct ModelWeights {
  std::shared_ptr<const gguf::GgufFile> file;  // the mapping the quantized matrices view
  model::QMatrix tok_embd;          // [vocab][dim]
  std::vector<float> output_norm;   // [dim]
  model::QMatrix output;            // [vocab][dim]; empty when tied to tok_embd
  std::vector<float> rope_freqs;    // optional per-frequency divisors [rope_dim/2] (Llama 3)
  std::vector<LayerWeights> layers;

  const model::QMatrix& output_matrix() const { return output.empty() ? tok_embd : output; }
};

}  // namespace tq
