#pragma once
// A scratch directory per test (process id + test name), removed with its contents.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace tq::test {

struct TempDir {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("tq_test_" + std::to_string(::getpid()) + "_" +
                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() { std::filesystem::create_directories(dir); }
  ~TempDir() { std::filesystem::remove_all(dir); }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

}  // namespace tq::test
