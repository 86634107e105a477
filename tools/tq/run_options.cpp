#include "run_options.h"

#include "commands.h"
#include "cuda_runner.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "args.h"
#include "turboquant/error.h"
#include "turboquant/model.h"
#include "validate.h"

namespace tq::cli {

const char* const kRunUsage =
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
    "  --profile F       calibration profile for a calibrated preset codec (tq3, ...); default:\n"
    "                    the model's profile in ~/.cache/turboquant/profiles, measured if missing\n"
    "  --weights W       quantized (default: the file's own types, 8-bit activations in the\n"
    "                    products, as llama.cpp) or f32 (dequantized at load, exact BLAS products)\n"
    "  --device D        cpu (default) or cuda: weights as f16 on the GPU, cuBLAS products, the\n"
    "                    compressed cache in device memory (no sessions)\n"
    "  --cuda-graphs     with --device cuda: replay each decode step as a CUDA graph\n"
    "  --dump-logits F   write the next-token logits after the prompt to F (raw f32)\n"
    "  --dump-ids F      write the prompt ids (line 1) and generated ids (line 2) to F\n"
    "  --save-session F  save the prompt's compressed cache, tokens and logits to F (atomic)\n"
    "  --load-session F  start from session F: its tokens must begin the prompt (with no\n"
    "                    prompt, continue right after them); the model file, codecs and Q/K\n"
    "                    balance must be the ones it was saved with; a calibrated preset's\n"
    "                    codecs are built again from the profile (--profile or the default)\n"
    "                    for the context the session was saved with, and another profile is\n"
    "                    refused\n"
    "  --force           let --save-session replace an existing file (without it, only the\n"
    "                    --load-session file itself is updated in place)\n"
    "  Named models live in $TQ_MODEL_DIR or ~/.cache/turboquant/models (scripts/setup_models.sh).\n";

namespace {

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::equivalent(a, b, ec);
}

}  // namespace

RunOptions parse_run_options(int argc, char** argv) {
  Args args(argc, argv, {"help", "chat", "force", "cuda-graphs"},
            {"model", "prompt", "prompt-file", "k-codec", "v-codec", "codec", "n", "temp", "top-k", "seed", "threads",
             "dump-logits", "dump-ids", "qk-balance", "save-session", "load-session", "weights", "profile", "device"});
  RunOptions o;
  if (args.has("help")) {
    o.help = true;
    return o;
  }
  o.load_session = args.get("load-session");
  if (!o.load_session.empty()) check_readable_file("load-session", o.load_session);
  const int n_prompts = args.has("prompt") + args.has("prompt-file");
  if (!args.has("model") || n_prompts > 1 || (n_prompts == 0 && o.load_session.empty()))
    throw Error(std::string("--model and one of --prompt, --prompt-file (or --load-session) are required\n") + kRunUsage);
  o.chat = args.has("chat");
  if (o.chat && n_prompts == 0) throw Error("--chat needs --prompt or --prompt-file");
  o.k_codec = args.get("k-codec", args.get("codec", "f16"));
  o.v_codec = args.get("v-codec", args.get("codec", "f16"));
  check_codec(args.has("k-codec") ? "k-codec" : "codec", o.k_codec, true);
  check_codec(args.has("v-codec") ? "v-codec" : "codec", o.v_codec, true);
  const CodecSpec* kp = find_preset(o.k_codec);
  const CodecSpec* vp = find_preset(o.v_codec);
  if (kp && vp && kp != vp) throw Error("--k-codec and --v-codec may name one calibrated preset, not two");
  o.preset = kp ? kp : vp;
  o.profile = args.get("profile");
  // The preset carries its own key transform.
  if (o.preset && args.has("qk-balance") && args.get_on_off("qk-balance", false))
    throw Error("--qk-balance on: the calibrated preset " + std::string(o.preset->name) +
                " has its own key transform; leave --qk-balance out");
  o.qk_balance = !o.preset && args.get_on_off("qk-balance", o.k_codec != "f16");
  o.n_gen = int_in_range(args, "n", 64, 0, 1 << 20);
  o.sampler.temperature = static_cast<float>(double_in_range(args, "temp", 0.0, 0.0, 100.0));
  o.sampler.top_k = int_in_range(args, "top-k", 40, 1, 1 << 24);
  o.seed = static_cast<uint64_t>(int_in_range(args, "seed", 1, 0, 2147483647));
  o.threads = int_in_range(args, "threads", 0, 0, 4096);
  o.weights = parse_weight_format(args.get("weights", "quantized"));
  o.cuda = parse_device_is_cuda(args.get("device", "cpu"));
  o.cuda_graphs = args.has("cuda-graphs");
  if (o.cuda_graphs && !o.cuda) throw Error("--cuda-graphs needs --device cuda");
  if (o.cuda && (args.has("save-session") || args.has("load-session")))
    throw Error("--device cuda does not save or load sessions yet; use --device cpu for --save-session/--load-session");
  for (const char* out : {"dump-logits", "dump-ids"})
    if (args.has(out)) check_writable_path(out, args.get(out));
  o.dump_logits = args.get("dump-logits");
  o.dump_ids = args.get("dump-ids");
  o.save_session = args.get("save-session");
  if (!o.save_session.empty()) {
    check_writable_path("save-session", o.save_session);
    o.replace_session = args.has("force") || (!o.load_session.empty() && same_file(o.save_session, o.load_session));
    if (!o.replace_session && std::filesystem::exists(o.save_session))
      throw Error("--save-session: '" + o.save_session +
                  "' already exists; pass --force to replace it (a session is only updated in place when it is "
                  "also the --load-session file)");
  } else if (args.has("force")) {
    throw Error("--force only applies to --save-session");
  }
  if (args.has("prompt-file")) {
    check_readable_file("prompt-file", args.get("prompt-file"));
    std::ifstream f(args.get("prompt-file"), std::ios::binary);
    o.prompt_text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (!f.eof() && f.fail()) throw Error("--prompt-file: cannot read '" + args.get("prompt-file") + "'");
  } else {
    o.prompt_text = args.get("prompt");
  }
  o.has_prompt = n_prompts == 1;
  o.echo_prompt = args.has("prompt") && !o.chat;
  o.model_path = resolve_model_path(args.get("model"));  // last: it names the setup script when missing
  return o;
}

}  // namespace tq::cli
