#pragma once
// The weights of one model, dequantized to f32 at load time. Matrices keep the GGUF
// layout: `out` rows of `in` contiguous floats. Optional tensors are empty vectors.
#include <vector>

namespace tq {

struct LayerWeights {
  std::vector<float> attn_norm;
  std::vector<float> wq, wk, wv, wo;
  std::vector<float> bq, bk, bv, bo;       // optional biases (Qwen2-style)
  std::vector<float> q_norm, k_norm;       // per-head RMSNorm weights (Gemma 3)
  std::vector<float> attn_post_norm;       // Gemma 3
  std::vector<float> ffn_norm;
  std::vector<float> w_gate, w_up, w_down;
  std::vector<float> ffn_post_norm;        // Gemma 3
};

struct ModelWeights {
  std::vector<float> tok_embd;      // [vocab][dim]
  std::vector<float> output_norm;   // [dim]
  std::vector<float> output;        // [vocab][dim]; empty when tied to tok_embd
  std::vector<float> rope_freqs;    // optional per-frequency divisors [rope_dim/2] (Llama 3)
  std::vector<LayerWeights> layers;

  const float* output_matrix() const { return output.empty() ? tok_embd.data() : output.data(); }
};

}  // namespace tq
