// tq run's end-of-run range warning on a tiny random model: keys pushed past fp16's range
// (a key bias of 1e6, norms near 1e7) are stored saturated and the run says how many
// vectors; a model in range prints no warning.
#include <gtest/gtest.h>

#include <string>

#include "run_tq.h"
#include "temp_dir.h"
#include "test_model_tiny.h"

namespace tq {
namespace {

class CliRange : public ::testing::Test {
 protected:
  // A tiny Qwen2-like model whose key bias has spread k_bias_scale.
  void write_model(float k_bias_scale) {
    test::TinySpec spec = test::TinySpec::qwen2();
    spec.k_bias_scale = k_bias_scale;
    test::make_tiny_model(spec).writer.write(model_);
  }
  test::TqResult run(const std::string& codec) {
    return test::run_tq({"run", "--model", model_, "--prompt", "the cat sat", "--n", "4", "--threads", "1",
                         "--k-codec", codec, "--v-codec", "q8_0"});
  }

  test::TempDir tmp_;
  const std::string model_ = tmp_ / "tiny.gguf";
};

TEST_F(CliRange, RunWarnsWhenKeysSaturate) {
  write_model(1e6f);
  for (const char* codec : {"turbo3", "f16"}) {
    const test::TqResult r = run(codec);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("tq run: WARNING: "), std::string::npos) << codec << ":\n" << r.output;
    EXPECT_NE(r.output.find(" key/value vectors had a norm or scale beyond the fp16 range"), std::string::npos)
        << r.output;
  }
}

TEST_F(CliRange, RunInRangeDoesNotWarn) {
  write_model(0.5f);
  const test::TqResult r = run("turbo3");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("WARNING"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tq
