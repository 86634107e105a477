// Every tq command checks its arguments before loading anything: a bad codec, file or
// number fails with exit status 1 and a message naming the option and the bad value,
// within a second. The model given is a file that is not GGUF at all, so a message about
// the argument (rather than "bad magic" about the file) shows the check ran first.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "run_tq.h"
#include "temp_dir.h"
#include "turboquant/error.h"
#include "turboquant/model.h"

namespace tq {
namespace {

using test::run_tq;

struct Case {
  std::vector<std::string> args;
  std::string needle;  // must appear in the output
};

void expect_refused(const std::vector<std::string>& args, const std::string& needle) {
  std::string line;
  for (const auto& a : args) line += a + " ";
  const test::TqResult r = run_tq(args);
  EXPECT_EQ(r.status, 1) << line << "\n" << r.output;
  EXPECT_NE(r.output.find("error: "), std::string::npos) << line << "\n" << r.output;
  EXPECT_NE(r.output.find(needle), std::string::npos) << line << "\nexpected '" << needle << "' in:\n" << r.output;
  EXPECT_EQ(r.output.find("bad magic"), std::string::npos) << line << ": the model was read before the check\n" << r.output;
  EXPECT_LT(r.seconds, 1.0) << line;
}

TEST(CliValidation, UnknownCodecNamesItAndListsTheValidOnes) {
  test::TempDir tmp;
  const std::string junk = tmp / "junk.gguf";
  std::ofstream(junk) << "this is not a GGUF file";
  for (const char* opt : {"--codec", "--k-codec", "--v-codec"}) {
    const test::TqResult r = run_tq({"run", "--model", junk, "--prompt", "hi", opt, "nosuch"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find(std::string(opt) + ": unknown codec 'nosuch'"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("valid codecs: f16 q8_0 q4_0"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("turbo3"), std::string::npos) << r.output;
    EXPECT_LT(r.seconds, 1.0);
  }
}

TEST(CliValidation, UnknownCodecWithTheRealModelFailsInUnderASecond) {
  try {
    resolve_model_path("smollm2");
  } catch (const Error&) {
    GTEST_SKIP() << "smollm2 is not installed (scripts/setup_models.sh)";
  }
  const test::TqResult r = run_tq({"run", "--model", "smollm2", "--codec", "nosuch", "--prompt", "hi"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("unknown codec 'nosuch'"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 1.0) << "the model was loaded before the codec was checked";
}

TEST(CliValidation, EveryCommandChecksItsArgumentsFirst) {
  test::TempDir tmp;
  const std::string junk = tmp / "junk.gguf", existing = tmp / "existing.tqs";
  std::ofstream(junk) << "this is not a GGUF file";
  std::ofstream(existing) << "someone's file";
  const std::string missing = tmp / "missing.txt", no_dir = tmp / "no_dir/out.json";
  const std::vector<std::string> run = {"run", "--model", junk, "--prompt", "hi"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = run;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::vector<Case> cases = {
      {with({"--n", "-1"}), "--n: -1 is outside [0, "},
      {with({"--temp", "abc"}), "--temp: 'abc' is not a number"},
      {with({"--temp", "-1"}), "--temp: -1"},
      {with({"--top-k", "0"}), "--top-k: 0 is outside"},
      {with({"--threads", "-2"}), "--threads: -2 is outside"},
      {with({"--qk-balance", "maybe"}), "--qk-balance takes on or off, got 'maybe'"},
      {with({"--dump-ids", no_dir}), "--dump-ids: directory"},
      {with({"--load-session", missing}), "--load-session: '" + missing + "' does not exist"},
      {with({"--save-session", existing}), "already exists; pass --force"},
      {with({"--force"}), "--force only applies to --save-session"},
      {with({"--bogus"}), "unknown option --bogus"},
      {{"run", "--model", junk, "--prompt-file", missing}, "--prompt-file: '" + missing + "' does not exist"},
      {{"run", "--model", junk}, "--model and one of --prompt, --prompt-file"},
      {{"run", "--model", junk, "--prompt", "a", "--prompt-file", junk}, "--model and one of"},
      {{"run", "--model", tmp / "absent.gguf", "--prompt", "hi"}, "does not exist"},
      {{"eval", "--model", junk, "--codecs", "f16,nosuch"}, "--codecs: unknown codec 'nosuch'; valid codecs: f16"},
      {{"eval", "--model", junk, "--k", "turbo3", "--codecs", "f16"}, "either --codecs or --k/--v"},
      {{"eval", "--model", junk, "--keep-layers", "0", "--keep-codec", "zz"}, "--keep-codec: unknown codec 'zz'"},
      {{"eval", "--model", junk, "--ctx", "0"}, "--ctx: 0 is outside"},
      {{"eval", "--model", junk, "--windows", "0"}, "--windows: 0 is outside"},
      {{"eval", "--model", junk, "--granule", "1"}, "--granule: 1 is outside"},
      {{"eval", "--model", junk, "--passkey-depths", "0.5,1.5"}, "--passkey-depths: '1.5' is not a number in [0, 1]"},
      {{"eval", "--model", junk, "--passkey-lengths", "x"}, "--passkey-lengths: 'x'"},
      {{"eval", "--model", junk, "--text", missing}, "--text: '" + missing + "' does not exist"},
      {{"eval", "--model", junk, "--json", no_dir}, "--json: directory"},
      {{"synth", "--codecs", "nosuch"}, "--codecs: unknown codec 'nosuch'"},
      {{"synth", "--vectors", "0"}, "--vectors: 0 is outside"},
      {{"synth", "--dims", "64,0"}, "--dims: 0 is outside"},
      {{"codecs", "--dim", "0"}, "--dim: 0 is outside"},
      {{"codecs", "--dim", "12x"}, "--dim: '12x' is not an integer"},
      {{"bench", "cpu", "--codecs", "nosuch"}, "--codecs: unknown codec 'nosuch'"},
      {{"bench", "cpu", "--gqa", "0"}, "--gqa: 0 is outside"},
      {{"bench", "cpu", "--min-time", "0"}, "--min-time: 0 is outside"},
      {{"inspect", junk, "--dump", "token_embd.weight"}, "--dump TENSOR and --out FILE go together"},
      {{"inspect", junk, "--tokenize-hex", missing}, "--tokenize-hex: '" + missing + "' does not exist"},
  };
  for (const Case& c : cases) expect_refused(c.args, c.needle);
  const test::TqResult r = run_tq({"inspect", missing});  // inspect reads the file first: that is its argument
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("cannot open GGUF file '" + missing + "'"), std::string::npos) << r.output;
}

// --device: cpu or cuda; CUDA-only options are refused on the CPU, and a tq without the
// CUDA backend says so before loading anything.
TEST(CliValidation, DeviceOptionsAreCheckedFirst) {
  test::TempDir tmp;
  const std::string junk = tmp / "junk.gguf";
  std::ofstream(junk) << "this is not a GGUF file";
  expect_refused({"run", "--model", junk, "--prompt", "hi", "--device", "gpu"}, "--device: expected cpu or cuda, got 'gpu'");
  expect_refused({"bench", "model", "--model", junk, "--device", "gpu"}, "--device: expected cpu or cuda");
  expect_refused({"bench", "model", "--model", junk, "--batch", "4"}, "--batch needs --device cuda");
  expect_refused({"bench", "model", "--model", junk, "--batch", "0", "--device", "cpu"}, "--batch must be >= 1");
  expect_refused({"eval", "--model", junk, "--device", "gpu"}, "--device: expected cpu or cuda, got 'gpu'");
#ifdef TQ_HAVE_CUDA_MODEL
  expect_refused({"run", "--model", junk, "--prompt", "hi", "--device", "cuda", "--save-session", tmp / "s.tqs"},
                 "--device cuda does not save or load sessions");
  expect_refused({"eval", "--model", junk, "--device", "cuda", "--attention-queries", "4"},
                 "--attention-queries: attention fidelity reads the CPU runner's Q/K/V; with --device cuda give 0");
#else
  expect_refused({"run", "--model", junk, "--prompt", "hi", "--device", "cuda"}, "built without the CUDA backend");
  expect_refused({"bench", "model", "--model", junk, "--device", "cuda"}, "built without the CUDA backend");
  expect_refused({"eval", "--model", junk, "--device", "cuda"}, "built without the CUDA backend");
#endif
}

}  // namespace
}  // namespace tq
