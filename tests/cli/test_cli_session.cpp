// tq run --save-session / --load-session end to end on a tiny random model: continuing
// from a session prints exactly the ids of the run without it (codecs of the table and a
// calibrated preset); another codec, model, Q/K balance, profile or prompt is refused
// with a message naming it; an existing file is only
// replaced with --force or when it is the session being updated; a damaged file is refused.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "run_tq.h"
#include "temp_dir.h"
#include "test_model_tiny.h"
#include "turboquant/kv_profile.h"

namespace tq {
namespace {

using test::run_tq;

class CliSession : public ::testing::Test {
 protected:
  void SetUp() override {
    test::make_tiny_model(test::TinySpec::llama()).writer.write(model_);
    test::TinySpec other = test::TinySpec::llama();
    other.seed = 7;
    test::make_tiny_model(other).writer.write(other_);
  }
  // tq run on the tiny model; returns the --dump-ids file ("" on failure).
  std::string run(std::vector<std::string> extra, const std::string& model = "") {
    const std::string ids = tmp_ / ("ids" + std::to_string(runs_++));
    std::vector<std::string> a = {"run", "--model", model.empty() ? model_ : model, "--n", "8", "--threads", "1",
                                  "--dump-ids", ids};
    a.insert(a.end(), extra.begin(), extra.end());
    last_ = run_tq(a);
    EXPECT_EQ(last_.status, 0) << last_.output;
    return last_.status == 0 ? test::read_file(ids) : "";
  }
  std::string refused(std::vector<std::string> extra, const std::string& model = "") {
    std::vector<std::string> a = {"run", "--model", model.empty() ? model_ : model, "--threads", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    const test::TqResult r = run_tq(a);
    EXPECT_EQ(r.status, 1) << r.output;
    return r.output;
  }

  test::TempDir tmp_;
  const std::string model_ = tmp_ / "tiny.gguf", other_ = tmp_ / "other.gguf", session_ = tmp_ / "s.tqs";
  test::TqResult last_;
  int runs_ = 0;
};

#define EXPECT_MENTIONS(out, what) EXPECT_NE((out).find(what), std::string::npos) << (out)

TEST_F(CliSession, ContinuingGivesTheSameTokensAsTheFullRun) {
  for (const std::string codec : {"f16", "turbo3"}) {
    std::filesystem::remove(session_);
    const std::string full = run({"--prompt", "the cat sat", "--codec", codec});
    ASSERT_FALSE(full.empty());
    EXPECT_EQ(run({"--prompt", "the cat sat", "--codec", codec, "--save-session", session_}), full);
    EXPECT_MENTIONS(last_.output, "session of");
    // The same prompt from the session: nothing left to prefill, same ids.
    EXPECT_EQ(run({"--prompt", "the cat sat", "--codec", codec, "--load-session", session_}), full);
    EXPECT_MENTIONS(last_.output, "prefill: 0 tokens");
    // No prompt: continue right after the session's tokens.
    EXPECT_EQ(run({"--codec", codec, "--load-session", session_}), full);
  }
}

TEST_F(CliSession, MismatchesAreRefusedBeforeGenerating) {
  run({"--prompt", "the cat sat", "--codec", "turbo3", "--save-session", session_});
  EXPECT_MENTIONS(refused({"--load-session", session_, "--codec", "q8_0"}),
                  "saved with K turbo3 / V turbo3, this run uses K q8_0 / V q8_0");
  EXPECT_MENTIONS(refused({"--load-session", session_, "--codec", "turbo3"}, other_), "another model file");
  EXPECT_MENTIONS(refused({"--load-session", session_, "--codec", "turbo3", "--qk-balance", "off"}),
                  "Q/K balance on, this run has it off");
  EXPECT_MENTIONS(refused({"--load-session", session_, "--codec", "turbo3", "--prompt", "a dog"}),
                  "does not start with the session's");
  std::string bytes = test::read_file(session_);
  bytes[bytes.size() / 2] ^= 0x20;
  const std::string damaged = tmp_ / "damaged.tqs";
  std::ofstream(damaged, std::ios::binary) << bytes;
  EXPECT_MENTIONS(refused({"--load-session", damaged, "--codec", "turbo3"}), "checksum mismatch");
  std::ofstream(tmp_ / "trunc.tqs", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  EXPECT_MENTIONS(refused({"--load-session", tmp_ / "trunc.tqs", "--codec", "turbo3"}), "truncated");
}

// A calibrated preset's session: the codecs are built again from the profile for the
// context the session was saved with, so continuing prints the ids of the run that saved
// it, also with a longer --n (a fresh run of that length would build other codecs). A
// profile measured otherwise is refused, naming it; another preset before the model loads.
TEST_F(CliSession, PresetSessionContinuesUnderTheSameCodecs) {
  const std::string profile = tmp_ / "tiny.tqprof";  // measured by the first run, then read
  const std::vector<std::string> tq3 = {"--codec", "tq3", "--profile", profile};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.end(), tq3.begin(), tq3.end());
    return a;
  };
  const std::string full = run(with({"--prompt", "the cat sat"}));
  ASSERT_FALSE(full.empty());
  EXPECT_MENTIONS(last_.output, "calibration profile: saved");
  EXPECT_EQ(run(with({"--prompt", "the cat sat", "--save-session", session_})), full);
  EXPECT_EQ(run(with({"--prompt", "the cat sat", "--load-session", session_})), full);
  EXPECT_MENTIONS(last_.output, "prefill: 0 tokens");
  EXPECT_EQ(run(with({"--load-session", session_})), full);
  // Line 2 of the ids file is the generated ids: 12 of them begin with the 8 of `full`.
  const std::string longer = run(with({"--load-session", session_, "--n", "12"}));
  const std::string gen = full.substr(full.find('\n') + 1), gen_longer = longer.substr(longer.find('\n') + 1);
  ASSERT_GT(gen.size(), 1u);
  EXPECT_EQ(gen_longer.rfind(gen.substr(0, gen.size() - 1) + " ", 0), 0u) << gen << " vs " << gen_longer;

  KvProfile p = load_profile(profile);
  p.heads[0].kk[0] *= 1.01;
  const std::string other = tmp_ / "other.tqprof";
  save_profile(p, other);
  const std::string msg = refused({"--load-session", session_, "--codec", "tq3", "--profile", other});
  EXPECT_MENTIONS(msg, "tq3 codecs that differ in the calibration profile");
  std::printf("[ info ] %s", msg.substr(msg.find("tq run: error")).c_str());
  EXPECT_MENTIONS(refused({"--load-session", session_, "--codec", "tq4", "--profile", profile}),
                  "saved with K tq3 / V tq3, this run uses K tq4 / V tq4");
}

TEST_F(CliSession, ReplacesAFileOnlyWithForceOrWhenUpdatingIt) {
  const std::string longer = run({"--prompt", "the cat sat on a dog"});
  run({"--prompt", "the cat sat", "--save-session", session_});
  const std::string first = test::read_file(session_);
  EXPECT_MENTIONS(refused({"--prompt", "the cat", "--save-session", session_}), "already exists; pass --force");
  EXPECT_EQ(test::read_file(session_), first);
  // Updating the loaded session in place: it now holds the longer prompt.
  EXPECT_EQ(run({"--prompt", "the cat sat on a dog", "--load-session", session_, "--save-session", session_}), longer);
  EXPECT_NE(test::read_file(session_), first);
  EXPECT_EQ(run({"--load-session", session_}), longer);
  // --force replaces any file.
  run({"--prompt", "the cat sat", "--save-session", session_, "--force"});
  EXPECT_EQ(test::read_file(session_), first);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp_.dir)) files += e.path().extension() == ".tqs";
  EXPECT_EQ(files, 1u);  // no temporaries left
}

}  // namespace
}  // namespace tq
