#pragma once
// A small fixed pool of worker threads with one primitive: parallel_for(n, fn) runs
// fn(0) .. fn(n-1) spread over the workers and the calling thread, and returns when all
// are done. A parallel_for issued from inside a task runs inline (no nested deadlock);
// the first exception thrown by a task is rethrown in the caller.
#include <functional>
#include <memory>

namespace tq {

class ThreadPool {
 public:
  explicit ThreadPool(int threads = 0);  // total threads incl. the caller; <= 0: all cores
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;  // threads that run tasks, the caller included
  void parallel_for(int n, const std::function<void(int)>& fn);

 private:
  struct State;
  std::unique_ptr<State> st_;
};

}  // namespace tq
