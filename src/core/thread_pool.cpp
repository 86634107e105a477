// ThreadPool: parallel_for publishes one job (n tasks, an atomic next-task counter) and
// the caller works on it too, so a pool of size 1 runs everything inline. The caller
// returns only after every worker has checked in for the job, so no worker can still be
// reading a job when the next is published.
//
// Waiting spins first, then sleeps: a decode step issues hundreds of short jobs, and
// waking a sleeping thread through the kernel cost about a third of a SmolLM2 decode
// step on 2 cores (perf: try_to_wake_up and the context switches it causes). Workers and
// the caller spin for up to kSpin before falling back to the condition variables, so an
// idle pool still sleeps and a machine with fewer free cores than threads is not starved.
#include "turboquant/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace tq {

namespace {

thread_local bool t_inside_task = false;  // nested parallel_for runs inline

constexpr auto kSpin = std::chrono::microseconds(200);

void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() or kSpin has passed; true when done() held.
template <class Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 1;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 255) == 0) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::yield();  // let a thread that shares this core run
    }
  }
}

}  // namespace

struct ThreadPool::State {
  std::mutex mu;
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> generation{0};  // bumped per job, after the job is published
  const std::function<void(int)>* fn = nullptr;
  int n = 0;
  std::atomic<int> next{0};
  std::atomic<int> finished{0};  // workers done with the current job
  std::exception_ptr error;
  std::mutex run_mu;  // one parallel_for at a time from outside

  int worker_count() const { return static_cast<int>(workers.size()); }

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
    for (;;) {
      auto ready = [&] { return stop.load(std::memory_order_acquire) || generation.load(std::memory_order_acquire) != seen; };
      if (!spin_until(ready)) {
        std::unique_lock<std::mutex> lk(mu);
        wake.wait(lk, ready);
      }
      if (stop.load(std::memory_order_acquire)) return;
      seen = generation.load(std::memory_order_acquire);
      run_tasks();
      if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 == worker_count()) {
        std::lock_guard<std::mutex> lk(mu);  // the caller may be between its check and its wait
        done.notify_all();
      }
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
    st_->stop.store(true, std::memory_order_release);
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
  s.fn = &fn;
  s.n = n;
  s.next.store(0);
  s.error = nullptr;
  s.finished.store(0);
  {
    // Under the lock: a worker that found nothing to do and is about to sleep either sees
    // the new generation in its wait predicate or is already waiting for the notify.
    std::lock_guard<std::mutex> lk(s.mu);
    s.generation.fetch_add(1, std::memory_order_release);
  }
  s.wake.notify_all();
  t_inside_task = true;
  s.run_tasks();
  t_inside_task = false;
  auto all_done = [&] { return s.finished.load(std::memory_order_acquire) == s.worker_count(); };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lk(s.mu);
    s.done.wait(lk, all_done);
  }
  s.fn = nullptr;
  if (s.error) std::rethrow_exception(s.error);
}

}  // namespace tq
