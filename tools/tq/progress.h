#pragma once
// A one-line progress bar on stderr (only when stderr is a terminal; otherwise a
// line per 10% so logs stay readable).
#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace tq::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)), tty_(isatty(2)) {}
  void update(size_t done, size_t total, const std::string& what) {
    if (total == 0) return;
    const int pct = static_cast<int>(100 * done / total);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (tty_) {
      const int filled = pct / 4;
      std::fprintf(stderr, "\r%s [%-25s] %3d%% %6.1fs %-30.30s", label_.c_str(),
                   std::string(filled, '#').c_str(), pct, secs, what.c_str());
      std::fflush(stderr);
    } else if (pct / 10 != last_decile_) {
      last_decile_ = pct / 10;
      std::fprintf(stderr, "%s: %3d%% (%.1fs) %s\n", label_.c_str(), pct, secs, what.c_str());
    }
  }
  void finish() {
    if (tty_) std::fprintf(stderr, "\n");
  }

 private:
  std::string label_;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace tq::cli
