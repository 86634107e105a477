// tq run: generate text from a GGUF model with a chosen KV cache codec, streaming the
// tokens, then report prefill and decode speed and what the cache holds.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/model.h"
#include "turboquant/sampler.h"

namespace tq::cli {
namespace {

constexpr const char* kUsage =
    "tq run --model PATH|smollm2|gemma3 --prompt TEXT [options]\n"
    "  Generates from a GGUF model (Llama family, Gemma 3) with a compressed KV cache.\n"
    "  --prompt-file F   read the prompt from file F instead of --prompt\n"
    "  --chat            wrap the prompt as a user message in the model's chat template\n"
    "  --k-codec C       key codec (default f16; see tq codecs)\n"
    "  --v-codec C       value codec (default f16)\n"
    "  --codec C         both at once\n"
    "  --qk-balance on|off  store keys as s*k and use queries q/s, s calibrated on a built-in\n"
    "                    text (exact scores, less key quantization error; default: on unless\n"
    "                    the key codec is f16)\n"
    "  --n N             tokens to generate (default 64); stops early at end of generation\n"
    "  --temp T          sampling temperature (default 0: greedy)\n"
    "  --top-k K         sample among the K most likely tokens (default 40)\n"
    "  --seed S          sampling seed (default 1)\n"
    "  --threads T       threads (default: all cores)\n"
    "  --weights W       quantized (default: the file's own types, 8-bit activations in the\n"
    "                    products, as llama.cpp) or f32 (dequantized at load, exact BLAS products)\n"
    "  --dump-logits F   write the next-token logits after the prompt to F (raw f32)\n"
    "  --dump-ids F      write the prompt ids (line 1) and generated ids (line 2) to F\n"
    "  Named models live in $TQ_MODEL_DIR or ~/.cache/turboquant/models (scripts/setup_models.sh).\n";

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void write_ids(std::ofstream& f, const std::vector<int32_t>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) f << (i ? " " : "") << ids[i];
  f << "\n";
}

// Prints the part of the decoded text not printed yet. Decoding the whole list each time
// keeps multi-token characters and SentencePiece spaces right.
class Streamer {
 public:
  explicit Streamer(const Tokenizer& tok) : tok_(tok) {}
  void push(int32_t id) {
    ids_.push_back(id);
    const std::string text = tok_.decode(ids_);
    if (text.size() > printed_ && text.compare(0, printed_, text, 0, printed_) == 0) {
      std::fwrite(text.data() + printed_, 1, text.size() - printed_, stdout);
      std::fflush(stdout);
      printed_ = text.size();
    }
  }
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  const Tokenizer& tok_;
  std::vector<int32_t> ids_;
  size_t printed_ = 0;
};

}  // namespace

WeightFormat parse_weight_format(const std::string& s) {
  if (s == "quantized") return WeightFormat::quantized;
  if (s == "f32") return WeightFormat::f32;
  throw Error("--weights must be quantized or f32, got '" + s + "'");
}

int cmd_run(int argc, char** argv) {
  Args args(argc, argv, {"help", "chat"},
            {"model", "prompt", "prompt-file", "k-codec", "v-codec", "codec", "n", "temp", "top-k", "seed", "threads", "dump-logits",
             "dump-ids", "qk-balance", "weights"});
  if (args.has("help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (!args.has("model") || args.has("prompt") == args.has("prompt-file")) {
    throw Error(std::string("--model and one of --prompt, --prompt-file are required\n") + kUsage);
  }
  std::string prompt_text = args.get("prompt");
  if (args.has("prompt-file")) {
    std::ifstream f(args.get("prompt-file"), std::ios::binary);
    if (!f) throw Error("cannot read --prompt-file " + args.get("prompt-file"));
    prompt_text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  const std::string k_codec = args.get("k-codec", args.get("codec", "f16"));
  const std::string v_codec = args.get("v-codec", args.get("codec", "f16"));
  const int n_gen = args.get_int("n", 64);
  if (n_gen < 0) throw Error("--n must be >= 0");
  SamplerParams sp;
  sp.temperature = static_cast<float>(args.get_double("temp", 0.0));
  sp.top_k = args.get_int("top-k", 40);
  Rng rng(static_cast<uint64_t>(args.get_int("seed", 1)));

  const std::string path = resolve_model_path(args.get("model"));
  const auto t_load = Clock::now();
  auto model = Model::load(path, args.get_int("threads", 0), parse_weight_format(args.get("weights", "quantized")));
  const ModelConfig& c = model->config();
  const Tokenizer& tok = model->tokenizer();
  const int balance_tokens = args.get_on_off("qk-balance", k_codec != "f16") ? model->enable_qk_balance() : 0;
  std::fprintf(stderr, "tq run: %s (%s, %d layers, %d KV heads x %d) loaded in %.1fs, %d threads, K %s, V %s%s\n",
               c.name.c_str(), c.arch.c_str(), c.n_layers, c.n_kv_heads, c.head_dim, seconds_since(t_load),
               model->threads(), k_codec.c_str(), v_codec.c_str(),
               balance_tokens > 0 ? (", Q/K balance from " + std::to_string(balance_tokens) + " tokens").c_str() : "");

  const std::string text = args.has("chat") ? tok.format_chat({{"user", prompt_text}}, true) : prompt_text;
  // A chat template that already spells the BOS token out must not get a second one.
  const std::string bos_text = tok.bos() >= 0 ? std::string(tok.piece(tok.bos())) : "";
  const bool text_has_bos = !bos_text.empty() && text.rfind(bos_text, 0) == 0;
  const bool add_bos = tok.add_bos_default() && !text_has_bos;
  const std::vector<int32_t> prompt = tok.encode(text, add_bos);
  if (prompt.empty()) throw Error("the prompt encodes to no tokens");
  const int capacity = static_cast<int>(prompt.size()) + n_gen + 1;
  if (capacity > c.context) {
    std::fprintf(stderr, "tq run: warning: %d tokens exceed the model's training context %d\n", capacity, c.context);
  }
  KvCache cache(model->cache_config(k_codec, v_codec, capacity));
  const int seq = cache.add_sequence();
  std::vector<float> logits(c.vocab);

  if (!args.has("chat") && !args.has("prompt-file")) std::printf("%s", prompt_text.c_str());
  std::fflush(stdout);
  const auto t_prefill = Clock::now();
  model->forward(prompt.data(), static_cast<int>(prompt.size()), cache, seq, logits.data(), false);
  const double prefill_s = seconds_since(t_prefill);
  if (args.has("dump-logits")) {
    std::ofstream f(args.get("dump-logits"), std::ios::binary);
    f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!f) throw Error("cannot write " + args.get("dump-logits"));
  }

  Streamer out(tok);
  const auto t_decode = Clock::now();
  int decoded = 0;  // forward calls of one token
  for (int i = 0; i < n_gen; ++i) {
    const int32_t next = sample_token(logits.data(), c.vocab, sp, rng);
    if (tok.is_eog(next)) break;
    out.push(next);
    if (i + 1 == n_gen) break;  // no logits needed after the last token
    model->forward(&next, 1, cache, seq, logits.data(), false);
    ++decoded;
  }
  const double decode_s = seconds_since(t_decode);
  std::printf("\n");
  std::fflush(stdout);
  if (args.has("dump-ids")) {
    std::ofstream f(args.get("dump-ids"));
    write_ids(f, prompt);
    write_ids(f, out.ids());
    if (!f) throw Error("cannot write " + args.get("dump-ids"));
  }

  const double f16_per_token = 2.0 * 2.0 * c.n_layers * c.n_kv_heads * c.head_dim;  // K + V, 2 bytes each
  const size_t per_token = cache.bytes_per_token();
  const int held = cache.length(0, seq);
  std::fprintf(stderr, "prefill: %zu tokens in %.2fs = %.1f tok/s\n", prompt.size(), prefill_s,
               prompt.size() / prefill_s);
  std::fprintf(stderr, "decode:  %d tokens in %.2fs = %.1f tok/s\n", decoded, decode_s,
               decoded > 0 ? decoded / decode_s : 0.0);
  std::fprintf(stderr,
               "cache:   %d tokens x %zu B/token (K %s + V %s, all layers) = %.1f KiB; f16: %.1f KiB; "
               "compression %.2fx (%.1f KiB of blocks allocated)\n",
               held, per_token, k_codec.c_str(), v_codec.c_str(), held * per_token / 1024.0,
               held * f16_per_token / 1024.0, f16_per_token / per_token, cache.bytes_used() / 1024.0);
  return 0;
}

}  // namespace tq::cli
