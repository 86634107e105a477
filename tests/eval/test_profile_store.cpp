// Where calibration profiles live (kv_profile_store.h), on a tiny random Llama-style model:
// measured once and reused; a profile of an older recipe (fewer calibration tokens) found
// at the default path is measured again, while the same file named by the user is used as
// it is, with a note, and never replaced.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "model/test_model_tiny.h"
#include "temp_dir.h"
#include "turboquant/kv_profile.h"
#include "turboquant/kv_profile_store.h"
#include "turboquant/model.h"

namespace tq {
namespace {

// TQ_PROFILE_DIR set for one scope (the default profile path), unset again even when an
// assertion ends the test early.
struct ProfileDirEnv {
  explicit ProfileDirEnv(const std::string& dir) { ::setenv("TQ_PROFILE_DIR", dir.c_str(), 1); }
  ~ProfileDirEnv() { ::unsetenv("TQ_PROFILE_DIR"); }
};

struct Log {
  std::string text;
  std::function<void(const std::string&)> fn() {
    return [this](const std::string& s) { text += s + "\n"; };
  }
  bool has(const std::string& s) const { return text.find(s) != std::string::npos; }
};

TEST(ProfileStore, AnOlderRecipeIsMeasuredAgainOnlyAtTheDefaultPath) {
  const test::TempDir dir;
  const std::string gguf = dir / "tiny.gguf";
  test::make_tiny_model(test::TinySpec::llama()).writer.write(gguf, true);
  auto model = Model::load(gguf, 2);
  const ProfileDirEnv env(dir / "profiles");
  const std::string default_path = default_profile_path(gguf, model_file_hash(gguf));

  Log first;
  const KvProfile fresh = load_or_calibrate_profile(*model, gguf, "", first.fn());
  EXPECT_TRUE(first.has("measuring on the built-in text")) << first.text;
  EXPECT_TRUE(std::filesystem::exists(default_path));
  // Four continuations of 768 sampled tokens (the BOS of each pass is left out).
  EXPECT_GE(fresh.tokens, 4 * 768);

  Log second;
  const KvProfile reused = load_or_calibrate_profile(*model, gguf, "", second.fn());
  EXPECT_FALSE(second.has("measuring")) << second.text;
  EXPECT_EQ(profile_hash(reused), profile_hash(fresh));

  KvProfile older = fresh;
  older.tokens = 1000;  // what the recipe of one continuation measured
  save_profile(older, default_path);
  Log stale;
  const KvProfile again = load_or_calibrate_profile(*model, gguf, "", stale.fn());
  EXPECT_TRUE(stale.has("older recipe")) << stale.text;
  EXPECT_TRUE(stale.has("measuring again")) << stale.text;
  EXPECT_EQ(again.tokens, fresh.tokens);
  EXPECT_EQ(load_profile(default_path).tokens, fresh.tokens);

  const std::string mine = dir / "mine.tqprof";
  save_profile(older, mine);
  Log named;
  const KvProfile as_is = load_or_calibrate_profile(*model, gguf, mine, named.fn());
  EXPECT_EQ(as_is.tokens, 1000);
  EXPECT_TRUE(named.has("tq calibrate --force --profile " + mine)) << named.text;
  EXPECT_FALSE(named.has("measuring")) << named.text;
  EXPECT_EQ(load_profile(mine).tokens, 1000);  // the user's file is untouched
}

}  // namespace
}  // namespace tq
