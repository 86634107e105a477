// The CUDA runner is a module tq loads for --device cuda only: the tq binary itself does
// not link cuBLAS (which costs about 140 MiB resident in every process that maps it, CPU
// runs included), and --device cuda still reaches the device runner through the module.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "run_tq.h"
#include "temp_dir.h"
#include "test_model_tiny.h"

namespace tq {
namespace {

// The shared libraries the dynamic loader would map for tq (what ldd prints).
std::string loaded_libraries() {
  const std::string cmd = "LD_TRACE_LOADED_OBJECTS=1 " + test::shell_quote(TQ_BIN) + " 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

TEST(CliCudaModule, TqDoesNotLinkCuBlas) {
  const std::string libs = loaded_libraries();
  ASSERT_NE(libs.find("libc.so"), std::string::npos) << "the loader trace did not run: " << libs;
  EXPECT_EQ(libs.find("cublas"), std::string::npos) << libs;
}

#ifdef TQ_HAVE_CUDA_MODEL
// With a GPU the bench runs on it; without one the module must still load and say so.
TEST(CliCudaModule, DeviceCudaLoadsTheRunnerModule) {
  test::TempDir tmp;
  const std::string model = tmp / "tiny.gguf";
  test::make_tiny_model(test::TinySpec::llama()).writer.write(model);
  const test::TqResult r = test::run_tq({"bench", "model", "--model", model, "--device", "cuda", "--codecs", "f16",
                                   "--depths", "0", "--prefill", "4", "--decode", "2", "--threads", "1"});
  EXPECT_EQ(r.output.find("cannot load the CUDA runner module"), std::string::npos) << r.output;
  if (r.status == 0) {
    EXPECT_NE(r.output.find("| f16 | 0 |"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("(GPU, batch 1)"), std::string::npos) << r.output;
  } else {
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("--device cuda: this tq has the CUDA backend but the CUDA runtime sees no GPU"),
              std::string::npos)
        << r.output;
  }
}
#endif

}  // namespace
}  // namespace tq
