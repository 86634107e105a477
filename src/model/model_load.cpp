// Loads the tensors an architecture needs from GGUF: matrices as views of the mapped
// file in their stored type (or f32 copies on request), vectors as f32. Every tensor is
// checked for its expected shape (ggml order: shape[0] is the contiguous axis), for a
// type the matrix kernels handle, and for NaN/Inf, so a damaged or unsupported file
// fails at load time with the tensor's name.
#include <cmath>
#include <memory>
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

void check_shape(const gguf::TensorInfo& info, const std::vector<uint64_t>& expected) {
  if (info.shape != expected) {
    throw Error("tensor " + info.name + " has shape " + shape_string(info.shape) + ", expected " +
                shape_string(expected));
  }
}

void check_finite(const gguf::TensorInfo& info, const float* v, size_t count, size_t first) {
  for (size_t i = 0; i < count; ++i) {
    if (!std::isfinite(v[i])) {
      throw Error("tensor " + info.name + " holds a non-finite value at element " + std::to_string(first + i));
    }
  }
}

// Dequantizes `info` after checking that its shape is exactly `expected`.
std::vector<float> read_tensor(const gguf::TensorInfo& info, const std::vector<uint64_t>& expected) {
  check_shape(info, expected);
  size_t count = 1;
  for (uint64_t d : expected) count *= static_cast<size_t>(d);
  std::vector<float> out(count);
  gguf::dequantize(info.type, info.data, count, out.data());
  check_finite(info, out.data(), count, 0);
  return out;
}

// A matrix [cols, rows] (ggml order). Quantized: a view of the file, whose finiteness is
// checked one dequantized row at a time so no f32 copy of the whole tensor is ever held.
model::QMatrix read_matrix(const gguf::TensorInfo& info, uint64_t cols, uint64_t rows, WeightFormat format) {
  check_shape(info, {cols, rows});
  model::QMatrix m;
  m.name = info.name;
  m.rows = static_cast<int>(rows);
  m.cols = static_cast<int>(cols);
  if (format == WeightFormat::f32) {
    m.owned = read_tensor(info, {cols, rows});
    m.type = gguf::GgmlType::F32;
    m.row_bytes = cols * sizeof(float);
    return m;
  }
  m.type = info.type;
  m.data = info.data;
  m.row_bytes = info.row_bytes();
  model::check_qmatmul_supported(m);
  std::vector<float> row(cols);
  for (int r = 0; r < m.rows; ++r) {
    model::qmatrix_row(m, r, row.data());
    check_finite(info, row.data(), cols, static_cast<size_t>(r) * cols);
  }
  return m;
}

class TensorReader {
 public:
  TensorReader(const gguf::GgufFile& f, WeightFormat format) : f_(f), format_(format) {}
  model::QMatrix matrix(const std::string& name, uint64_t cols, uint64_t rows) const {
    return read_matrix(info(name), cols, rows, format_);
  }
  std::vector<float> required(const std::string& name, std::vector<uint64_t> shape) const {
    return read_tensor(info(name), shape);
  }
  std::vector<float> optional(const std::string& name, std::vector<uint64_t> shape) const {
    const gguf::TensorInfo* info = f_.find_tensor(name);
    return info ? read_tensor(*info, shape) : std::vector<float>{};
  }

 private:
  const gguf::TensorInfo& info(const std::string& name) const {
    const gguf::TensorInfo* i = f_.find_tensor(name);
    if (!i) throw Error("model file lacks tensor " + name);
    return *i;
  }
  const gguf::GgufFile& f_;
  WeightFormat format_;
};

}  // namespace

ModelWeights load_weights(std::shared_ptr<const gguf::GgufFile> file, const ModelConfig& c, WeightFormat format) {
  const gguf::GgufFile& f = *file;
  const TensorReader r(f, format);
  const uint64_t dim = c.dim, ffn = c.ffn_dim, vocab = c.vocab;
  const uint64_t q_dim = static_cast<uint64_t>(c.n_heads) * c.head_dim;
  const uint64_t kv_dim = static_cast<uint64_t>(c.n_kv_heads) * c.head_dim;
  ModelWeights w;
  w.file = std::move(file);
  w.tok_embd = r.matrix("token_embd.weight", dim, vocab);
  w.output_norm = r.required("output_norm.weight", {dim});
  if (!c.tied_output) w.output = r.matrix("output.weight", dim, vocab);
  w.rope_freqs = r.optional("rope_freqs.weight", {static_cast<uint64_t>(c.rope_dim / 2)});
  w.layers.resize(c.n_layers);
  for (int il = 0; il < c.n_layers; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    if (f.find_tensor(p + "attn_qkv.weight")) throw Error("fused QKV tensors (" + p + "attn_qkv.weight) are not supported");
    LayerWeights& L = w.layers[il];
    L.attn_norm = r.required(p + "attn_norm.weight", {dim});
    L.wq = r.matrix(p + "attn_q.weight", dim, q_dim);
    L.wk = r.matrix(p + "attn_k.weight", dim, kv_dim);
    L.wv = r.matrix(p + "attn_v.weight", dim, kv_dim);
    L.wo = r.matrix(p + "attn_output.weight", q_dim, dim);
    L.bq = r.optional(p + "attn_q.bias", {q_dim});
    L.bk = r.optional(p + "attn_k.bias", {kv_dim});
    L.bv = r.optional(p + "attn_v.bias", {kv_dim});
    L.bo = r.optional(p + "attn_output.bias", {dim});
    L.ffn_norm = r.required(p + "ffn_norm.weight", {dim});
    L.w_gate = r.matrix(p + "ffn_gate.weight", dim, ffn);
    L.w_up = r.matrix(p + "ffn_up.weight", dim, ffn);
    L.w_down = r.matrix(p + "ffn_down.weight", ffn, dim);
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
