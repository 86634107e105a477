// tq bench model: see cmd_bench_model.cpp.
// tq bench cpu: decode attention per codec beside the f16 cache, quantize-on-write
// throughput (tools/cpu_bench/cpu_attention_bench.*). Prints a markdown report; --markdown FILE
// also writes it with the exact command line, commit, CPU model and date.
#include <cstdio>
#include <fstream>
#include <string>

#include "args.h"
#include "commands.h"
#include "validate.h"

#ifdef TQ_HAVE_BENCH
#include "cpu_attention_bench.h"
#endif

namespace tq::cli {

namespace {

std::string first_line_of(const char* cmd) {
  std::string s;
  if (FILE* f = popen(cmd, "r")) {
    char buf[256];
    if (fgets(buf, sizeof buf, f)) s = buf;
    pclose(f);
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "unknown" : s;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  if (argc >= 1 && std::string(argv[0]) == "model") return cmd_bench_model(argc - 1, argv + 1);
  Args args(argc, argv, {"help", "quiet", "write-only"},
            {"codecs", "contexts", "dims", "kv-heads", "gqa", "threads", "min-time", "write-tokens", "markdown"});
  const auto& pos = args.positional();
  if (args.has("help") || pos.size() != 1 || pos[0] != "cpu") {
    std::printf(
        "tq bench model ...   prefill/decode tok/s of a real model per codec and depth (tq bench model --help)\n"
        "tq bench cpu [--codecs f16,turbo3,...] [--contexts 1024,4096,16384,65536] [--dims 64,128,256]\n"
        "             [--kv-heads 8] [--gqa 4] [--threads N] [--min-time 0.2] [--write-tokens 512]\n"
        "             [--write-only] [--markdown FILE] [--quiet]\n"
        "  Decode attention time per codec beside the f16 cache (same attend(), same run), effective\n"
        "  GB/s of K+V bytes read, and quantize-on-write throughput. --markdown writes the report with\n"
        "  the command, commit, CPU and date (scripts/bench_cpu.sh puts it into BENCHMARKS.md).\n"
        "  --write-only measures quantize-on-write alone (no cache fill, no attention). Calibrated\n"
        "  presets (tq3, ...) run on a representative SmolLM2 layout (tools/cpu_bench/representative_layouts.h).\n");
    return args.has("help") ? 0 : 2;
  }
  // Checked first, so a bad value fails the same way whether or not benchmarks are built.
  check_codecs("codecs", args.get_list("codecs"), true);  // presets run on representative layouts
  const std::vector<int> contexts = int_list_in_range(args, "contexts", 1, 1 << 24);
  const std::vector<int> dims = int_list_in_range(args, "dims", 1, 4096);
  const int kv_heads = int_in_range(args, "kv-heads", 8, 1, 1024);
  const int gqa = int_in_range(args, "gqa", 4, 1, 1024);
  const int threads = int_in_range(args, "threads", 0, 0, 4096);
  const double min_time = double_in_range(args, "min-time", 0.2, 1e-6, 3600.0);
  const int write_tokens = int_in_range(args, "write-tokens", 512, 1, 1 << 24);
  if (args.has("markdown")) check_writable_path("markdown", args.get("markdown"));
#ifndef TQ_HAVE_BENCH
  (void)kv_heads, (void)gqa, (void)threads, (void)min_time, (void)write_tokens;
  throw Error("this build has no benchmarks (configure with -DTQ_BENCH=ON and Google Benchmark installed)");
#else
  bench::CpuBenchConfig cfg;
  if (args.has("codecs")) cfg.codecs = args.get_list("codecs");
  if (args.has("contexts")) cfg.contexts = contexts;
  if (args.has("dims")) cfg.dims = dims;
  cfg.n_kv_heads = kv_heads;  // the fallbacks above are CpuBenchConfig's defaults
  cfg.gqa = gqa;
  cfg.threads = threads;
  cfg.min_time = min_time;
  cfg.write_tokens = write_tokens;
  cfg.verbose = !args.has("quiet");
  cfg.write_only = args.has("write-only");
  const std::string body = bench::run_cpu_bench(cfg);
  std::printf("%s", body.c_str());
  if (args.has("markdown")) {
    std::string cmd = "tq bench";
    for (int i = 0; i < argc; ++i) cmd += std::string(" ") + argv[i];
    std::ofstream f(args.get("markdown"));
    if (!f) throw Error("cannot write " + args.get("markdown"));
    f << "## CPU decode attention\n\n"
      << "- command: `" << cmd << "`\n"
      << "- commit: " << first_line_of("git rev-parse --short HEAD 2>/dev/null")
      << (first_line_of("git status --porcelain -- src include bench tools/cpu_bench 2>/dev/null | head -1") != "unknown"
              ? " (+ uncommitted changes)"
              : "")
      << ", date: " << first_line_of("date -u +%Y-%m-%d") << ", CPU: "
      << first_line_of("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2") << " ("
      << first_line_of("nproc") << " cores visible)\n\n"
      << body;
  }
  return 0;
#endif
}

}  // namespace tq::cli
