// A session writer killed at random moments never leaves a wrong session: a child process
// rewrites one path in a loop, alternating between four sessions, one of them of a
// calibrated preset with its sink store (and creates fresh names, the no-overwrite path). 20 children are killed with SIGKILL after a random
// delay; 10 more get a file size limit below a session's size, so the kernel kills them
// (SIGXFSZ) in the middle of writing a temporary, at a known byte. Every file left in
// the directory, temporaries included, must either load as exactly one of the four
// sessions or be refused with a tq::Error naming the session file; the target names
// themselves (written by rename or link) must always load.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "session_test_util.h"
#include "temp_dir.h"
#include "turboquant/error.h"
#include "turboquant/rng.h"

namespace tq {
namespace {

namespace fs = std::filesystem;

constexpr int kKills = 20;        // SIGKILL after a random delay
constexpr int kSizeKills = 10;    // SIGXFSZ at a random byte of the first write

// `round` keeps the fresh names of each child apart from the previous children's;
// `max_bytes` > 0 limits the size of any file the child writes.
[[noreturn]] void write_forever(const std::vector<Session>& sessions, const fs::path& dir, int round,
                                rlim_t max_bytes) {
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  if (max_bytes > 0) {
    const rlimit size{max_bytes, max_bytes};
    setrlimit(RLIMIT_FSIZE, &size);
  }
  for (uint64_t i = 0;; ++i) {
    try {
      const Session& s = sessions[i % sessions.size()];
      save_session(s, (dir / "s.tqs").string(), true);
      save_session(s, (dir / ("new" + std::to_string(round) + "_" + std::to_string(i) + ".tqs")).string(), false);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "writer: %s\n", e.what());
      _exit(3);  // a failed write is a test failure: the parent sees exit status 3
    }
  }
}

TEST(SessionKill, KilledWriterNeverLeavesAWrongSession) {
  test::TempDir tmp;
  // A few hundred KiB each, so a write spans many write() calls and the kill lands in
  // the middle of some of them.
  const std::vector<Session> sessions = {test::make_session(1, 400, true), test::make_session(2, 300, false),
                                         test::make_session(3, 500, true), test::make_preset_session(4, 300)};
  std::vector<std::vector<uint8_t>> expected;
  for (const Session& s : sessions) expected.push_back(serialize_session(s));

  Rng rng(42);
  int loaded = 0, refused = 0;
  for (int round = 0; round < kKills + kSizeKills; ++round) {
    const bool by_size = round >= kKills;
    const rlim_t max_bytes = by_size ? 1 + rng.below(static_cast<uint32_t>(expected[0].size() - 1)) : 0;
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) write_forever(sessions, tmp.dir, round, max_bytes);
    int status = 0;
    if (!by_size) {
      std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng.below(40000)));
      ASSERT_EQ(::kill(pid, SIGKILL), 0);
    }
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself (status " << status << ")";
    EXPECT_EQ(WTERMSIG(status), by_size ? SIGXFSZ : SIGKILL);

    for (const auto& e : fs::directory_iterator(tmp.dir)) {
      const std::string path = e.path().string();
      const bool target = e.path().extension() == ".tqs";  // temporaries end in .tmp.XXXXXX
      try {
        const std::vector<uint8_t> bytes = serialize_session(load_session(path));
        EXPECT_NE(std::find(expected.begin(), expected.end(), bytes), expected.end())
            << path << " loaded as a session that was never written";
        ++loaded;
      } catch (const Error& e) {
        EXPECT_FALSE(target) << path << " (a finished name) was refused: " << e.what();
        EXPECT_NE(std::string(e.what()).find("session file"), std::string::npos) << e.what();
        ++refused;
      }
    }
  }
  // Both outcomes occurred: the size kills always leave a partial temporary.
  EXPECT_GT(loaded, 0);
  EXPECT_GE(refused, kSizeKills);
  std::printf("[ info ] %d kills: %d file checks loaded exactly, %d partial temporaries refused\n",
              kKills + kSizeKills, loaded, refused);
}

}  // namespace
}  // namespace tq
