#pragma once
// A fixed pool of worker threads for background and task-parallel work (input prefetch, file
// chunks, analyzers). Data-parallel loops inside kernels use parallel_for (OpenMP), which shares
// its team with oneDNN instead of competing with it for the cores.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "core/function_ref.h"

namespace kiln {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `fn`; the future carries its result or its exception.
  template <typename Fn>
  auto submit(Fn fn) -> std::future<decltype(fn())> {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    std::future<R> result = task->get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.emplace_back([task] { (*task)(); });
    }
    cv_.notify_one();
    return result;
  }
  int size() const { return static_cast<int>(workers_.size()); }

 private:
  void run();
  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

// Runs fn(begin, end) over contiguous chunks of [0, n) on the OpenMP team; chunks are fixed by
// n and the thread count, so results are reproducible for a given thread count. Runs inline when
// n is below `grain` elements.
void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn);

}  // namespace kiln
