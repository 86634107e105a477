// Writes a GGUF with the shapes of a real model (SmolLM2-135M or Gemma 3 270M) and random
// weights, for timing `tq bench model --device cuda|cpu` where the real files cannot be
// copied (the lent GPU machine takes 64 MiB of files per call). Speed depends on the
// shapes, not the values; the tokenizer is the tests' tiny one (its ids are a prefix of
// the embedding's rows, which the runner allows).
//   write_shaped_gguf smollm2|gemma3 OUT.gguf
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "model/tiny_tokenizers.h"
#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/rng.h"

namespace {

struct Shape {
  std::string arch;
  int layers, dim, heads, kv_heads, head_dim, ffn, vocab;
  int sliding_window = 0;
};

int write(const Shape& s, const std::string& path) {
  using tq::gguf::GgmlType;
  tq::gguf::GgufWriter g;
  const std::string a = s.arch + ".";
  g.add_string("general.architecture", s.arch);
  g.add_string("general.name", s.arch + "-shaped-random");
  g.add_uint32(a + "block_count", s.layers);
  g.add_uint32(a + "context_length", 32768);
  g.add_uint32(a + "embedding_length", s.dim);
  g.add_uint32(a + "feed_forward_length", s.ffn);
  g.add_uint32(a + "attention.head_count", s.heads);
  g.add_uint32(a + "attention.head_count_kv", s.kv_heads);
  g.add_uint32(a + "attention.key_length", s.head_dim);
  g.add_uint32(a + "attention.value_length", s.head_dim);
  g.add_float(a + "attention.layer_norm_rms_epsilon", 1e-6f);
  if (s.sliding_window > 0) g.add_uint32(a + "attention.sliding_window", s.sliding_window);
  tq::test::add_tiny_spm_tokenizer(g);
  tq::Rng rng(1);
  auto add = [&](const std::string& name, std::vector<uint64_t> shape, float sd, float mean) {
    size_t n = 1;
    for (uint64_t d : shape) n *= d;
    std::vector<float> v(n);
    for (float& x : v) x = mean + sd * static_cast<float>(rng.gaussian());
    if (shape.size() == 2) {
      g.add_tensor_quantized(name, shape, GgmlType::F16, v);
    } else {
      g.add_tensor_f32(name, shape, v);
    }
  };
  const uint64_t dim = s.dim, ffn = s.ffn, q = uint64_t(s.heads) * s.head_dim, kv = uint64_t(s.kv_heads) * s.head_dim;
  const float in_dim = 1.f / std::sqrt(float(s.dim));
  const bool gemma = s.arch == "gemma3";
  add("token_embd.weight", {dim, uint64_t(s.vocab)}, gemma ? in_dim : 1.f, 0.f);
  add("output_norm.weight", {dim}, 0.1f, 1.f);
  for (int il = 0; il < s.layers; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    add(p + "attn_norm.weight", {dim}, 0.1f, 1.f);
    add(p + "attn_q.weight", {dim, q}, in_dim, 0.f);
    add(p + "attn_k.weight", {dim, kv}, in_dim, 0.f);
    add(p + "attn_v.weight", {dim, kv}, in_dim, 0.f);
    add(p + "attn_output.weight", {q, dim}, 1.f / std::sqrt(float(q)), 0.f);
    add(p + "ffn_norm.weight", {dim}, 0.1f, 1.f);
    add(p + "ffn_gate.weight", {dim, ffn}, in_dim, 0.f);
    add(p + "ffn_up.weight", {dim, ffn}, in_dim, 0.f);
    add(p + "ffn_down.weight", {ffn, dim}, 1.f / std::sqrt(float(ffn)), 0.f);
    if (gemma) {
      add(p + "attn_q_norm.weight", {uint64_t(s.head_dim)}, 0.1f, 1.f);
      add(p + "attn_k_norm.weight", {uint64_t(s.head_dim)}, 0.1f, 1.f);
      add(p + "post_attention_norm.weight", {dim}, 0.1f, 1.f);
      add(p + "post_ffw_norm.weight", {dim}, 0.1f, 1.f);
    }
  }
  g.write(path, true);
  std::printf("wrote %s (%s shapes, random weights)\n", path.c_str(), s.arch.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string which = argc == 3 ? argv[1] : "";
    if (which == "smollm2") return write({"llama", 30, 576, 9, 3, 64, 1536, 49152}, argv[2]);
    if (which == "gemma3") return write({"gemma3", 18, 640, 4, 1, 256, 2048, 262144, 512}, argv[2]);
    std::fprintf(stderr, "usage: write_shaped_gguf smollm2|gemma3 OUT.gguf\n");
    return 2;
  } catch (const tq::Error& e) {
    std::fprintf(stderr, "write_shaped_gguf: %s\n", e.what());
    return 1;
  }
}
