#pragma once
// Runs the tq binary (TQ_BIN, set by CMake) with arguments, capturing its output
// (stdout and stderr together), exit status and wall time.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tq::test {

struct TqResult {
  int status = -1;     // exit status
  std::string output;  // stdout + stderr
  double seconds = 0;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A file's bytes, as tq wrote them (empty when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline TqResult run_tq(const std::vector<std::string>& args) {
  std::string cmd = shell_quote(TQ_BIN);
  for (const auto& a : args) {
    cmd += ' ';  // not " " + ...: GCC 12 warns falsely (-Wrestrict) on that where it inlines
    cmd += shell_quote(a);
  }
  cmd += " 2>&1";
  TqResult r;
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace tq::test
