// Loads the tensors an architecture needs from GGUF, dequantized to f32. Every tensor
// is checked for its expected shape (ggml order: shape[0] is the contiguous axis) and
// for NaN/Inf, so a damaged file fails at load time with the tensor's name.
#include <cmath>
#include <string>
#include <vector>

#include "model_loader.h"
#include "turboquant/error.h"

namespace tq::model {
namespace {

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Dequantizes `info` after checking that its shape is exactly `expected`.
std::vector<float> read_tensor(const gguf::TensorInfo& info, const std::vector<uint64_t>& expected) {
  if (info.shape != expected) {
    throw Error("tensor " + info.name + " has shape " + shape_string(info.shape) + ", expected " +
                shape_string(expected));
  }
  size_t count = 1;
  for (uint64_t d : expected) count *= static_cast<size_t>(d);
  std::vector<float> out(count);
  gguf::dequantize(info.type, info.data, count, out.data());
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(out[i])) {
      throw Error("tensor " + info.name + " holds a non-finite value at element " + std::to_string(i));
    }
  }
  return out;
}

class TensorReader {
 public:
  explicit TensorReader(const gguf::GgufFile& f) : f_(f) {}
  std::vector<float> required(const std::string& name, std::vector<uint64_t> shape) const {
    const gguf::TensorInfo* info = f_.find_tensor(name);
    if (!info) throw Error("model file lacks tensor " + name);
    return read_tensor(*info, shape);
  }
  std::vector<float> optional(const std::string& name, std::vector<uint64_t> shape) const {
    const gguf::TensorInfo* info = f_.find_tensor(name);
    return info ? read_tensor(*info, shape) : std::vector<float>{};
  }

 private:
  const gguf::GgufFile& f_;
};

}  // namespace

ModelWeights load_weights(const gguf::GgufFile& f, const ModelConfig& c) {
  const TensorReader r(f);
  const uint64_t dim = c.dim, ffn = c.ffn_dim, vocab = c.vocab;
  const uint64_t q_dim = static_cast<uint64_t>(c.n_heads) * c.head_dim;
  const uint64_t kv_dim = static_cast<uint64_t>(c.n_kv_heads) * c.head_dim;
  ModelWeights w;
  w.tok_embd = r.required("token_embd.weight", {dim, vocab});
  w.output_norm = r.required("output_norm.weight", {dim});
  if (!c.tied_output) w.output = r.required("output.weight", {dim, vocab});
  w.rope_freqs = r.optional("rope_freqs.weight", {static_cast<uint64_t>(c.rope_dim / 2)});
  w.layers.resize(c.n_layers);
  for (int il = 0; il < c.n_layers; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    if (f.find_tensor(p + "attn_qkv.weight")) throw Error("fused QKV tensors (" + p + "attn_qkv.weight) are not supported");
    LayerWeights& L = w.layers[il];
    L.attn_norm = r.required(p + "attn_norm.weight", {dim});
    L.wq = r.required(p + "attn_q.weight", {dim, q_dim});
    L.wk = r.required(p + "attn_k.weight", {dim, kv_dim});
    L.wv = r.required(p + "attn_v.weight", {dim, kv_dim});
    L.wo = r.required(p + "attn_output.weight", {q_dim, dim});
    L.bq = r.optional(p + "attn_q.bias", {q_dim});
    L.bk = r.optional(p + "attn_k.bias", {kv_dim});
    L.bv = r.optional(p + "attn_v.bias", {kv_dim});
    L.bo = r.optional(p + "attn_output.bias", {dim});
    L.ffn_norm = r.required(p + "ffn_norm.weight", {dim});
    L.w_gate = r.required(p + "ffn_gate.weight", {dim, ffn});
    L.w_up = r.required(p + "ffn_up.weight", {dim, ffn});
    L.w_down = r.required(p + "ffn_down.weight", {ffn, dim});
    if (c.qk_norm) {
      L.q_norm = r.required(p + "attn_q_norm.weight", {static_cast<uint64_t>(c.head_dim)});
      L.k_norm = r.required(p + "attn_k_norm.weight", {static_cast<uint64_t>(c.head_dim)});
    }
    if (c.post_norms) {
      L.attn_post_norm = r.required(p + "post_attention_norm.weight", {dim});
      L.ffn_post_norm = r.required(p + "post_ffw_norm.weight", {dim});
    }
  }
  return w;
}

}  // namespace tq::model
