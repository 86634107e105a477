#include <cstdio>
#include <fstream>
#include <string>

#include "args.h"
#include "commands.h"
#include "progress.h"
#include "turboquant/synth.h"
#include "validate.h"

namespace tq::cli {

int cmd_synth(int argc, char** argv) {
  Args args(argc, argv, {"json", "help"}, {"codecs", "dims", "vectors", "seed", "out"});
  if (args.has("help")) {
    std::printf(
        "tq synth [--codecs a,b,...] [--dims 64,128,256] [--vectors N] [--seed S] [--json] [--out FILE]\n"
        "  Quality of each codec on random unit vectors and on vectors with outlier channels.\n"
        "  --json prints JSON instead of the table; --out also writes the JSON to FILE.\n");
    return 0;
  }
  SynthOptions opt;
  opt.codecs = args.get_list("codecs");
  check_codecs("codecs", opt.codecs);
  if (args.has("dims")) opt.dims = int_list_in_range(args, "dims", 1, 4096);
  opt.vectors = int_in_range(args, "vectors", opt.vectors, 1, 1 << 24);
  opt.seed = static_cast<uint64_t>(int_in_range(args, "seed", static_cast<int>(opt.seed), 0, 2147483647));
  if (args.has("out")) check_writable_path("out", args.get("out"));
  ProgressBar bar("synth");
  const auto rows = run_synth(opt, [&](size_t done, size_t total, const std::string& what) {
    bar.update(done, total, what);
  });
  bar.finish();
  const std::string json = synth_json(rows);
  if (args.has("out")) {
    std::ofstream f(args.get("out"));
    if (!f) throw Error("cannot write " + args.get("out"));
    f << json;
  }
  std::fputs(args.has("json") ? json.c_str() : synth_table(rows).c_str(), stdout);
  return 0;
}

}  // namespace tq::cli
