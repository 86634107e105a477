// llama_dump: runs llama.cpp (CPU, f16 KV cache) on given prompt token ids and writes
// the next-token logits after the prompt (raw little-endian f32) and a greedy
// continuation (token ids, one per line). Used by scripts/compare_llama_cpp.sh to check
// tq's forward pass against an independent implementation on identical input.
//
//   llama_dump MODEL.gguf PROMPT_IDS.txt N_PREDICT LOGITS.f32 CONTINUATION.txt [THREADS [PROMPT.txt]]
// With PROMPT.txt it also tokenizes that text with llama.cpp's tokenizer (BOS as the
// model's metadata says) and reports whether the ids equal PROMPT_IDS.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "llama.h"

static void quiet_log(ggml_log_level, const char*, void*) {}

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s MODEL.gguf PROMPT_IDS.txt N_PREDICT LOGITS.f32 CONTINUATION.txt [THREADS]\n", argv[0]);
    return 2;
  }
  const int n_predict = std::atoi(argv[3]);
  const int threads = argc > 6 ? std::atoi(argv[6]) : 2;
  std::vector<llama_token> prompt;
  {
    std::ifstream in(argv[2]);
    for (long id; in >> id;) prompt.push_back(static_cast<llama_token>(id));
  }
  if (prompt.empty()) {
    std::fprintf(stderr, "llama_dump: no prompt ids in %s\n", argv[2]);
    return 1;
  }
  llama_log_set(quiet_log, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    std::fprintf(stderr, "llama_dump: cannot load %s\n", argv[1]);
    return 1;
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(prompt.size() + n_predict + 16);
  cp.n_batch = cp.n_ctx;
  cp.n_ubatch = cp.n_ctx;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.type_k = GGML_TYPE_F16;
  cp.type_v = GGML_TYPE_F16;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) {
    std::fprintf(stderr, "llama_dump: cannot create a context\n");
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  if (argc > 7) {
    std::ifstream in(argv[7], std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<llama_token> ids(text.size() + 8);
    const int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                                 static_cast<int32_t>(ids.size()), true, false);
    ids.resize(n > 0 ? n : 0);
    size_t same = 0;
    while (same < ids.size() && same < prompt.size() && ids[same] == prompt[same]) ++same;
    if (same == ids.size() && same == prompt.size()) {
      std::printf("tokenization: llama.cpp gives the same %zu ids as tq\n", ids.size());
    } else {
      std::printf("tokenization: llama.cpp gives %zu ids, tq %zu; first difference at index %zu\n", ids.size(),
                  prompt.size(), same);
    }
  }

  if (llama_decode(ctx, llama_batch_get_one(prompt.data(), static_cast<int32_t>(prompt.size()))) != 0) {
    std::fprintf(stderr, "llama_dump: decode of the prompt failed\n");
    return 1;
  }
  const float* logits = llama_get_logits_ith(ctx, -1);
  {
    std::FILE* f = std::fopen(argv[4], "wb");
    if (!f || std::fwrite(logits, sizeof(float), n_vocab, f) != static_cast<size_t>(n_vocab)) {
      std::fprintf(stderr, "llama_dump: cannot write %s\n", argv[4]);
      return 1;
    }
    std::fclose(f);
  }
  std::ofstream cont(argv[5]);
  for (int i = 0; i < n_predict; ++i) {
    const float* l = llama_get_logits_ith(ctx, -1);
    llama_token best = 0;
    for (int t = 1; t < n_vocab; ++t) {
      if (l[t] > l[best]) best = t;
    }
    cont << best << "\n";
    if (llama_decode(ctx, llama_batch_get_one(&best, 1)) != 0) {
      std::fprintf(stderr, "llama_dump: decode failed at step %d\n", i);
      return 1;
    }
  }
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
