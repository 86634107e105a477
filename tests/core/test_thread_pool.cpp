#include <gtest/gtest.h>

#include <atomic>
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

}  // namespace
}  // namespace tq
