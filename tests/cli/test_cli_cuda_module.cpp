// The CUDA runner is a module tq loads for --device cuda only: the tq binary itself does
// not link cuBLAS (which costs about 140 MiB resident in every process that maps it, CPU
// runs included), and --device cuda still reaches the device runner through the module.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

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

// A number that follows `key` after the row labelled `label` in tq eval's JSON.
double row_number(const std::string& json, const std::string& label, const std::string& key) {
  const size_t row = json.find("{\"label\": \"" + label + "\"");
  if (row == std::string::npos) return -1;
  const size_t at = json.find("\"" + key + "\": ", row);
  return at == std::string::npos ? -1 : std::stod(json.substr(at + key.size() + 4));
}

// tq eval --device cuda runs the same table as the CPU: with a GPU, the f16 row's perplexity
// within 5% of the CPU runner's (f16 weights against the CPU's), q8_0's KL small and tq3's
// near the CPU's; without one, the module loads and says there is no GPU. The CPU run is
// checked either way.
TEST(CliCudaModule, EvalOnTheDeviceMatchesTheCpuTable) {
  test::TempDir tmp;
  const std::string model = tmp / "tiny.gguf", text = tmp / "text.txt";
  test::make_tiny_model(test::TinySpec::llama()).writer.write(model);
  {
    std::ofstream t(text);
    for (int p = 0; p < 60; ++p)
      t << "The quick brown fox jumps over the lazy dog number " << p << ", and then it rests.\n\n";
  }
  auto eval = [&](const std::string& json, bool cuda) {
    std::vector<std::string> a = {"eval", "--model", model, "--text", text, "--ctx", "48", "--windows", "1",
                                  "--codecs", "q8_0,tq3", "--profile", tmp / "tiny.tqprof", "--no-passkey",
                                  "--threads", "1", "--quiet", "--json", json};
    if (cuda) a.insert(a.end(), {"--device", "cuda"});
    return test::run_tq(a);
  };
  const test::TqResult cpu = eval(tmp / "cpu.json", false);
  ASSERT_EQ(cpu.status, 0) << cpu.output;
  const std::string cpu_json = test::read_file(tmp / "cpu.json");
  EXPECT_NE(cpu_json.find("\"device\": \"CPU\""), std::string::npos) << cpu_json;
  const double cpu_ppl = row_number(cpu_json, "f16", "ppl");
  ASSERT_GT(cpu_ppl, 1.0) << cpu_json;
  const double cpu_tq3 = row_number(cpu_json, "tq3", "kl");
  ASSERT_GE(cpu_tq3, 0.0) << cpu_json;
  std::printf("  tq eval on the CPU: f16 PPL %.4f, q8_0 KL %.2e, tq3 KL %.2e\n", cpu_ppl,
              row_number(cpu_json, "q8_0", "kl"), cpu_tq3);

  const test::TqResult gpu = eval(tmp / "gpu.json", true);
  EXPECT_EQ(gpu.output.find("cannot load the CUDA runner module"), std::string::npos) << gpu.output;
  if (gpu.status != 0) {
    EXPECT_EQ(gpu.status, 1) << gpu.output;
    EXPECT_NE(gpu.output.find("--device cuda: this tq has the CUDA backend but the CUDA runtime sees no GPU"),
              std::string::npos)
        << gpu.output;
    return;
  }
  const std::string gpu_json = test::read_file(tmp / "gpu.json");
  EXPECT_NE(gpu_json.find("\"device\": \"CUDA ("), std::string::npos) << gpu_json;
  const double gpu_ppl = row_number(gpu_json, "f16", "ppl");
  EXPECT_NEAR(gpu_ppl / cpu_ppl, 1.0, 0.05) << "f16 perplexity on the GPU " << gpu_ppl << ", CPU " << cpu_ppl;
  const double kl = row_number(gpu_json, "q8_0", "kl");
  EXPECT_GE(kl, 0.0) << gpu_json;
  EXPECT_LT(kl, 0.05) << gpu_json;
  // tq3 keeps the model's own keys (no Q/K balance) on both runners: a balance applied to
  // its calibrated maps would move its KL far from the CPU's.
  const double tq3 = row_number(gpu_json, "tq3", "kl");
  EXPECT_NEAR(tq3, cpu_tq3, 0.25 * cpu_tq3 + 0.01) << gpu_json;
  std::printf("  tq eval on CUDA: f16 PPL %.4f, q8_0 KL %.2e, tq3 KL %.2e\n", gpu_ppl, kl, tq3);
}
#endif

}  // namespace
}  // namespace tq
