// ThreadPool: workers sleep on a condition variable; parallel_for publishes one job
// (n tasks, an atomic next-task counter) and the caller works on it too, so a pool of
// size 1 runs everything inline. The caller returns only after every worker has checked
// in for the job, so no worker can still be reading a job when the next is published.
#include "turboquant/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace tq {

namespace {
thread_local bool t_inside_task = false;  // nested parallel_for runs inline
}

struct ThreadPool::State {
  std::mutex mu;
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  bool stop = false;
  uint64_t generation = 0;  // bumped per job so sleeping workers know there is work
  const std::function<void(int)>* fn = nullptr;
  int n = 0;
  std::atomic<int> next{0};
  int finished = 0;  // workers done with the current job
  std::exception_ptr error;
  std::mutex run_mu;  // one parallel_for at a time from outside

  void run_tasks() {
    for (;;) {
      const int i = next.fetch_add(1);
      if (i >= n) return;
      try {
        (*fn)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu);
        if (!error) error = std::current_exception();
        next.store(n);  // stop handing out tasks
      }
    }
  }

  void worker_loop() {
    uint64_t seen = 0;
    t_inside_task = true;
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      wake.wait(lk, [&] { return stop || generation != seen; });
      if (stop) return;
      seen = generation;
      lk.unlock();
      run_tasks();
      lk.lock();
      if (++finished == static_cast<int>(workers.size())) done.notify_all();
    }
  }
};

ThreadPool::ThreadPool(int threads) : st_(std::make_unique<State>()) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) st_->workers.emplace_back([s = st_.get()] { s->worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(st_->mu);
    st_->stop = true;
  }
  st_->wake.notify_all();
  for (auto& w : st_->workers) w.join();
}

int ThreadPool::size() const { return static_cast<int>(st_->workers.size()) + 1; }

void ThreadPool::parallel_for(int n, const std::function<void(int)>& fn) {
  if (n <= 0) return;
  if (t_inside_task || st_->workers.empty() || n == 1) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  std::lock_guard<std::mutex> run(st_->run_mu);
  State& s = *st_;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    s.fn = &fn;
    s.n = n;
    s.next.store(0);
    s.error = nullptr;
    s.finished = 0;
    ++s.generation;
  }
  s.wake.notify_all();
  t_inside_task = true;
  s.run_tasks();
  t_inside_task = false;
  std::unique_lock<std::mutex> lk(s.mu);
  s.done.wait(lk, [&] { return s.finished == static_cast<int>(s.workers.size()); });
  s.fn = nullptr;
  if (s.error) std::rethrow_exception(s.error);
}

}  // namespace tq
