// The range counters (range.h): thread-safe totals, reset, the end-of-run warning and the
// refused-value message both caches use.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "turboquant/range.h"

namespace tq {
namespace {

TEST(RangeEvents, CountsFromManyThreadsAndResets) {
  reset_range_events();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([] {
      for (int i = 0; i < 10000; ++i) {
        detail::count_saturated(1);
        if (i % 10 == 0) detail::count_nonfinite(2);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(range_events().saturated, 40000u);
  EXPECT_EQ(range_events().nonfinite, 8000u);
  reset_range_events();
  EXPECT_EQ(range_events().saturated, 0u);
  EXPECT_EQ(range_events().nonfinite, 0u);
}

TEST(RangeEvents, WarningOnlyWhenSomethingSaturated) {
  EXPECT_EQ(range_warning({0, 3}), "");
  const std::string w = range_warning({12, 0});
  EXPECT_EQ(w.rfind("WARNING: 12 key/value vectors", 0), 0u) << w;
  EXPECT_NE(w.find("65504"), std::string::npos) << w;
}

TEST(RangeEvents, NonFiniteMessageNamesEverything) {
  EXPECT_EQ(nonfinite_kv_message("where", 3, 1, "position 17", false, 5, std::nanf("")),
            "where: layer 3, KV head 1, position 17: K coordinate 5 is NaN (non-finite keys and values are refused)");
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_NE(nonfinite_kv_message("w", 0, 0, "p", true, 0, inf).find("V coordinate 0 is +Inf"), std::string::npos);
  EXPECT_NE(nonfinite_kv_message("w", 0, 0, "p", true, 0, -inf).find("V coordinate 0 is -Inf"), std::string::npos);
}

}  // namespace
}  // namespace tq
