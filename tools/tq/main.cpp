// tq: the turboquant.cpp command line.
#include <cstdio>
#include <cstring>
#include <exception>

#include "commands.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"codecs", "list the codec table: bits per coordinate, bytes per vector, rotation", tq::cli::cmd_codecs},
    {"bench", "CPU decode attention per codec against the f16 cache; quantize-on-write throughput; model tok/s (bench model)", tq::cli::cmd_bench},
    {"synth", "synthetic quality of every codec on random and outlier vectors", tq::cli::cmd_synth},
    {"inspect", "GGUF file: metadata, tensor table, tensor types (--check dequantizes all)", tq::cli::cmd_inspect},
    {"run", "generate text from a GGUF model with a compressed KV cache", tq::cli::cmd_run},
    {"eval", "compare cache codecs on a real model: PPL, KL, attention, passkey, speed", tq::cli::cmd_eval},
    {"calibrate", "measure a model's calibration profile for the calibrated presets (tq3, ...)", tq::cli::cmd_calibrate},
};

void usage() {
  std::printf("usage: tq <command> [options]   (tq <command> --help for its options)\n\ncommands:\n");
  for (const auto& c : kCommands) std::printf("  %-8s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc - 2, argv + 2);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tq %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "tq: unknown command '%s'\n\n", argv[1]);
  usage();
  return 2;
}
