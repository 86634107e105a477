// tq eval: side-by-side comparison of KV-cache codecs on a real model.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "args.h"
#include "turboquant/codec.h"
#include "commands.h"
#include "progress.h"
#include "range_report.h"
#include "turboquant/error.h"
#include "turboquant/eval.h"
#include "turboquant/kv_profile.h"
#include "turboquant/model.h"
#include "validate.h"
#ifdef TQ_EVAL_HAS_MODEL
#include "cuda_runner.h"
#include "turboquant/eval_model.h"
#endif

namespace tq::cli {

namespace {

// Defaults sized so the whole default comparison (8 codecs with the f16 reference, passkey)
// runs in minutes on a 2-core machine; --ctx/--windows widen it.
constexpr int kDefaultCtx = 2048;
constexpr int kDefaultWindows = 2;

constexpr const char* kUsage =
    "tq eval [--model smollm2|gemma3|FILE.gguf] [--text FILE] [--ctx N] [--windows N]\n"
    "        [--codecs a,b,...] | [--k a,b --v c,d]  [--keep-layers 0,-1 --keep-codec q8_0]\n"
    "        [--passkey-lengths a,b] [--passkey-depths 0.1,0.5,0.9] [--no-passkey]\n"
    "        [--attention-queries N] [--decode-tail N] [--threads N] [--seed S]\n"
    "        [--qk-balance on|off] [--json FILE] [--markdown FILE] [--plot FILE.png] [--quiet]\n"
    "        [--all] [--profile FILE] [--granule N] [--device cpu|cuda]\n"
    "  --all: every family member (fp8, block rotations, QJL, q8_0h, tq2.5) instead of the default list.\n"
    "  --device cuda: the model and every cache on the GPU (tq run --device cuda's runner: f16\n"
    "  weights, caches written and read by the CUDA kernels); attention fidelity reads the CPU\n"
    "  runner's Q/K/V, so it is off there.\n"
    "  Calibrated presets (tq2.5 ... tq4.25) use the model's calibration profile: --profile\n"
    "  FILE, else ~/.cache/turboquant/profiles (measured once per model file when missing).\n"
    "  --granule N: their group sizes are multiples of N (default 4; it must divide head_dim).\n"
    "  Compares KV-cache codecs against an f16 cache on the same text windows: bits per\n"
    "  value, cache bytes, perplexity and its change, KL(f16||codec) and top-1 agreement of\n"
    "  next-token distributions, attention fidelity on the model's own Q/K/V, passkey\n"
    "  retrieval, prefill/decode tokens/s. K and V are quantized on write, prefill included.\n"
    "  Defaults: --model smollm2, Jane Austen's novels (scripts/setup_text.sh), 2 windows of\n"
    "  2048 tokens, passkey at ctx/2 and ctx, depths 0.25 and 0.75, Q/K balance on (keys\n"
    "  stored as s*k, queries as q/s, s calibrated on a built-in text: docs/EVAL.md), codecs: ";

std::string default_text_path() {
  if (const char* d = std::getenv("TQ_TEXT_DIR")) return std::string(d) + "/austen.txt";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/turboquant/text/austen.txt";
}

#ifdef TQ_EVAL_HAS_MODEL

std::string read_file(const std::string& path, const std::string& hint) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read text " + path + hint);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// Command, commit, date and machine for the BENCHMARKS.md section (the date: the run's start).
std::string provenance(int argc, char** argv) {
  std::string cmd = "tq eval";
  for (int i = 0; i < argc; ++i) {
    cmd += ' ';
    cmd += argv[i];
  }
  std::string commit = run_capture("git rev-parse --short HEAD 2>/dev/null");
  if (!commit.empty() && !run_capture("git status --porcelain --untracked-files=no 2>/dev/null").empty())
    commit += " (with uncommitted changes)";
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string cpu = run_capture("grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2");
  return "Command: `" + cmd + "`  \nCommit: " + (commit.empty() ? "unknown" : commit) + "  \nDate: " + date +
         "  \nMachine: " + (cpu.empty() ? "unknown CPU" : cpu.substr(cpu.find_first_not_of(' '))) + ", " +
         std::to_string(std::thread::hardware_concurrency()) + " hardware threads\n";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!f || !(f << text)) throw Error("cannot write " + path);
}
#endif

}  // namespace

int cmd_eval(int argc, char** argv) {
  Args args(argc, argv, {"help", "no-passkey", "quiet", "all"},
            {"model", "text", "ctx", "windows", "codecs", "k", "v", "keep-layers", "keep-codec", "qk-balance",
             "passkey-lengths", "passkey-depths", "attention-queries", "decode-tail", "threads", "seed",
             "json", "markdown", "plot", "profile", "granule", "device"});
  if (args.has("help")) {
    std::string names;
    for (const auto& c : default_eval_codecs()) {
      if (!names.empty()) names += ' ';
      names += c;
    }
    std::printf("%s%s\n", kUsage, names.c_str());
    return 0;
  }
  // Every option is checked before the text and the model load (minutes for gemma3).
  check_codecs("codecs", args.get_list("codecs"), true);
  check_codecs("k", args.get_list("k"), true);
  check_codecs("v", args.get_list("v"), true);
  check_codec("keep-codec", args.get("keep-codec", "q8_0"));
  if (args.has("codecs") && (args.has("k") || args.has("v"))) throw Error("give either --codecs or --k/--v, not both");
  const std::vector<int> keep_layers = int_list_in_range(args, "keep-layers", -4096, 4095);
  EvalOptions opt;
  const int ctx = int_in_range(args, "ctx", kDefaultCtx, 8, 1 << 20);
  opt.windows = int_in_range(args, "windows", kDefaultWindows, 1, 1 << 16);
  opt.decode_tail = int_in_range(args, "decode-tail", opt.decode_tail, 0, 1 << 20);
  opt.attention_queries = int_in_range(args, "attention-queries", opt.attention_queries, 0, 1 << 20);
  opt.seed = static_cast<uint64_t>(int_in_range(args, "seed", 0, 0, 2147483647));
  const int threads = int_in_range(args, "threads", 0, 0, 4096);
  const int granule = int_in_range(args, "granule", CalibrationOptions{}.granule, 2, 1024);
  const bool qk_balance = args.get_on_off("qk-balance", true);
  const std::vector<int> passkey_lengths = int_list_in_range(args, "passkey-lengths", 8, 1 << 20);
  std::vector<double> passkey_depths = {0.25, 0.75};
  if (args.has("passkey-depths")) {
    passkey_depths.clear();
    for (const auto& d : args.get_list("passkey-depths")) {
      char* end = nullptr;
      const double x = std::strtod(d.c_str(), &end);
      if (*end != '\0' || !(x >= 0.0 && x <= 1.0))
        throw Error("--passkey-depths: '" + d + "' is not a number in [0, 1]");
      passkey_depths.push_back(x);
    }
  }
  bool cuda = false;
#ifdef TQ_EVAL_HAS_MODEL
  cuda = parse_device_is_cuda(args.get("device", "cpu"));
#endif
  if (cuda) {
    if (args.has("attention-queries") && opt.attention_queries > 0)
      throw Error("--attention-queries: attention fidelity reads the CPU runner's Q/K/V; with --device cuda give 0 "
                  "or leave it out");
    opt.attention_queries = 0;
  }
  for (const char* out : {"json", "markdown", "plot"})
    if (args.has(out)) check_writable_path(out, args.get(out));
  const std::string text_path = args.get("text", default_text_path());
  if (args.has("text")) check_readable_file("text", text_path);
  const std::string model_name = args.get("model", "smollm2");
  const std::string model_path = resolve_model_path(model_name);
#ifndef TQ_EVAL_HAS_MODEL
  throw Error("this tq was built without the model runner (src/model, src/cache)");
#else
  const std::string text = read_file(
      text_path, args.has("text") ? "" : " (install it with scripts/setup_text.sh, or pass --text FILE)");
  if (!args.has("quiet")) std::fprintf(stderr, "eval: loading %s ...\n", model_name.c_str());
  ProfileRequest profile;
  for (const char* opt : {"codecs", "k", "v"})
    for (const auto& name : args.get_list(opt)) profile.wanted |= find_preset(name) != nullptr;
  const std::vector<std::string> codecs =
      args.has("codecs") ? args.get_list("codecs") : args.has("all") ? all_eval_codecs() : std::vector<std::string>{};
  if (args.has("all") && (args.has("codecs") || args.has("k") || args.has("v")))
    throw Error("--all replaces the codec list: give it without --codecs/--k/--v");
  if (!args.has("k") && !args.has("v"))
    for (const auto& name : codecs.empty() ? default_eval_codecs() : codecs) profile.wanted |= find_preset(name) != nullptr;
  profile.path = args.get("profile");
  profile.granule = granule;
  if (args.has("granule") && !profile.wanted)
    throw Error("--granule shapes the calibrated presets' groups, and the codec list has no preset (tq2.5 ... tq4.25)");
  if (!args.has("quiet")) profile.log = [](const std::string& s) { std::fprintf(stderr, "eval: %s\n", s.c_str()); };
  auto model = load_eval_model(model_path, threads, qk_balance, profile);
  if (cuda) {
    run_eval_on(*model, [](Model& m) { return make_cuda_eval_device(m); });
    if (!args.has("quiet")) std::fprintf(stderr, "eval: forward passes on %s\n", model->info().device.c_str());
  }
  const EvalModelInfo& info = model->info();

  opt.plans = make_plans(codecs, args.get_list("k"), args.get_list("v"), keep_layers,
                         args.get("keep-codec", "q8_0"), info.n_layers);
  opt.ctx = std::min(ctx, info.context > 0 ? info.context : kDefaultCtx);
  if (!args.has("no-passkey")) {
    opt.passkey_lengths = passkey_lengths;
    if (opt.passkey_lengths.empty()) opt.passkey_lengths = {opt.ctx / 2, opt.ctx};
    opt.passkey_depths = passkey_depths;
  }
  if (!args.has("quiet")) {
    std::fprintf(stderr,
                 "eval: %s, %zu cache plans + f16 reference, %d windows x %d tokens, passkey at %zu lengths x "
                 "%zu depths (--ctx/--windows/--codecs to change)\n",
                 info.name.c_str(), opt.plans.size(), opt.windows, opt.ctx, opt.passkey_lengths.size(),
                 opt.passkey_depths.size());
  }

  // Taken before the run writes its own outputs (tracked files under docs/eval), which
  // would otherwise read as uncommitted changes.
  const std::string origin = provenance(argc, argv);
  ProgressBar bar("eval");
  EvalReport report = run_eval(*model, text, opt, [&](size_t done, size_t total, const std::string& what) {
    if (!args.has("quiet")) bar.update(done, total, what);
  });
  if (!args.has("quiet")) bar.finish();
  report.text_source = args.has("text") ? text_path
                                        : "Jane Austen's six novels (Debian r-cran-janeaustenr, public domain)";

  std::fputs(eval_table(report).c_str(), stdout);
  std::string json_path = args.get("json");
  if (!json_path.empty() || args.has("plot")) {
    if (json_path.empty()) json_path = args.get("plot") + ".json";
    write_file(json_path, eval_json(report));
  }
  if (args.has("markdown")) write_file(args.get("markdown"), eval_markdown(report, origin));
  if (args.has("plot")) {
    // The plot script sits next to the source tree's scripts/; TQ_SCRIPTS overrides.
    const char* dir = std::getenv("TQ_SCRIPTS");
    const std::string script = std::string(dir ? dir : TQ_EVAL_SCRIPTS_DIR) + "/plot_eval.py";
    const std::string cmd = "python3 '" + script + "' '" + json_path + "' '" + args.get("plot") + "'";
    if (std::system(cmd.c_str()) != 0) throw Error("plotting failed: " + cmd);
  }
  report_range_events("tq eval");
  return 0;
#endif
}

}  // namespace tq::cli
