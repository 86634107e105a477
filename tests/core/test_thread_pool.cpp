#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <stdexcept>
#include <vector>

#include "turboquant/thread_pool.h"

namespace tq {
namespace {

TEST(ThreadPool, RunsEveryTaskOnceAcrossManyJobs) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.size(), 4);
  for (int job = 0; job < 200; ++job) {
    const int n = 1 + job % 37;
    std::vector<std::atomic<int>> hits(n);
    pool.parallel_for(n, [&](int i) { hits[i]++; });
    for (int i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "job " << job << " task " << i;
  }
}

TEST(ThreadPool, NestedCallsRunInlineAndExceptionsPropagate) {
  ThreadPool pool(3);
  std::atomic<int> total{0};
  pool.parallel_for(8, [&](int) { pool.parallel_for(5, [&](int) { total++; }); });
  EXPECT_EQ(total.load(), 40);
  EXPECT_THROW(pool.parallel_for(16, [](int i) { if (i == 7) throw std::runtime_error("boom"); }),
               std::runtime_error);
  pool.parallel_for(4, [&](int) { total++; });  // still usable after an exception
  EXPECT_EQ(total.load(), 44);
}

// Workers spin briefly between jobs, then sleep: jobs that come after a pause longer than
// the spin must wake them, jobs back to back must be picked up by the spinning ones.
TEST(ThreadPool, WakesWorkersAfterIdlePausesAndBetweenBackToBackJobs) {
  ThreadPool pool(3);
  std::atomic<int> total{0};
  for (int round = 0; round < 6; ++round) {
    if (round % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers asleep
    for (int job = 0; job < 300; ++job) pool.parallel_for(7, [&](int) { total++; });
  }
  EXPECT_EQ(total.load(), 6 * 300 * 7);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_THROW(pool.parallel_for(9, [](int i) { if (i == 8) throw std::runtime_error("late"); }), std::runtime_error);
  pool.parallel_for(3, [&](int) { total++; });
  EXPECT_EQ(total.load(), 6 * 300 * 7 + 3);
}

}  // namespace
}  // namespace tq
