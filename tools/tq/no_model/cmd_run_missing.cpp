// `tq run` in a build without the model runner (OpenBLAS was not found at configure time):
// the command stays listed so that its absence is explained rather than "unknown command".
#include <cstdio>

#include "commands.h"

namespace tq::cli {

int cmd_run(int, char**) {
  std::fprintf(stderr,
               "tq run: this tq was built without the model runner, which needs OpenBLAS.\n"
               "  Install libopenblas-dev (scripts/install_deps.sh) and reconfigure (TQ_MODEL=AUTO or ON).\n");
  return 2;
}

}  // namespace tq::cli
