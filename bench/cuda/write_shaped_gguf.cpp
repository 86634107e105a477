// Writes a GGUF with the shapes of a real model (SmolLM2-135M or Gemma 3 270M) and random
// weights, for timing `tq bench model --device cuda|cpu` where the real files cannot be
// copied (the lent GPU machine takes 64 MiB of files per call). Speed depends on the
// shapes, not the values. The file is the tests' tiny model (tests/model/test_model_tiny.h)
// at these shapes: one GGUF writer for both; the tokenizer is the tiny one (its ids are a
// prefix of the embedding's rows, which the runner allows).
//   write_shaped_gguf smollm2|gemma3 OUT.gguf
#include <cstdio>
#include <string>

#include "model/test_model_tiny.h"
#include "turboquant/error.h"

namespace {

tq::test::TinySpec shaped(const std::string& arch, int layers, int dim, int heads, int kv_heads, int head_dim,
                          int ffn, int vocab) {
  tq::test::TinySpec s;
  s.arch = arch;
  s.name = arch + "-shaped-random";
  s.n_layers = layers;
  s.dim = dim;
  s.n_heads = heads;
  s.n_kv_heads = kv_heads;
  s.head_dim = head_dim;
  s.ffn_dim = ffn;
  s.embedding_rows = vocab;
  s.context_length = 32768;
  s.tied = true;
  s.matrix_type = tq::gguf::GgmlType::F16;
  return s;
}

int write(const tq::test::TinySpec& s, const std::string& path) {
  tq::test::make_tiny_model(s).writer.write(path, true);
  std::printf("wrote %s (%s shapes, random weights)\n", path.c_str(), s.arch.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string which = argc == 3 ? argv[1] : "";
    if (which == "smollm2") return write(shaped("llama", 30, 576, 9, 3, 64, 1536, 49152), argv[2]);
    if (which == "gemma3") {
      tq::test::TinySpec s = shaped("gemma3", 18, 640, 4, 1, 256, 2048, 262144);
      s.sliding_window = 512;
      s.swa_pattern = 6;  // five sliding layers, then a global one
      s.rope_base = 1000000.f;
      return write(s, argv[2]);
    }
    std::fprintf(stderr, "usage: write_shaped_gguf smollm2|gemma3 OUT.gguf\n");
    return 2;
  } catch (const tq::Error& e) {
    std::fprintf(stderr, "write_shaped_gguf: %s\n", e.what());
    return 1;
  }
}
