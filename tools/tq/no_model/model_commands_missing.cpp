// `tq run`, `tq calibrate`, `tq eval` and `tq bench model` in a build without the model
// runner (OpenBLAS was not found at configure time): the commands stay listed so that their
// absence is explained rather than "unknown command".
#include <cstdio>

#include "commands.h"

namespace tq::cli {

namespace {

int missing(const char* command) {
  std::fprintf(stderr,
               "tq %s: this tq was built without the model runner, which needs OpenBLAS.\n"
               "  Install libopenblas-dev (scripts/install_deps.sh) and reconfigure (TQ_MODEL=AUTO or ON).\n",
               command);
  return 2;
}

}  // namespace

int cmd_run(int, char**) { return missing("run"); }
int cmd_calibrate(int, char**) { return missing("calibrate"); }
int cmd_eval(int, char**) { return missing("eval"); }
int cmd_bench_model(int, char**) { return missing("bench model"); }

}  // namespace tq::cli
