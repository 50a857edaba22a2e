#include "core/collective_watchdog.h"

#include <cstdio>
#include <cstdlib>

namespace kiln {

CollectiveWatchdog::CollectiveWatchdog(std::string who) : who_(std::move(who)) {}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CollectiveWatchdog::set_timeout(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  timeout_s_ = seconds > 0 ? seconds : 0;
  // Started on first use: a job that never sets a limit runs no extra thread.
  if (timeout_s_ > 0 && !thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

CollectiveWatchdog::Guard CollectiveWatchdog::watch(const char* what) {
  std::lock_guard<std::mutex> lock(mutex_);
  in_flight_ = what;
  since_ = std::chrono::steady_clock::now();
  return Guard(*this);
}

void CollectiveWatchdog::end() {
  std::lock_guard<std::mutex> lock(mutex_);
  in_flight_ = nullptr;
}

void CollectiveWatchdog::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    if (stop_ || !in_flight_ || timeout_s_ <= 0) continue;
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
    if (waited < timeout_s_) continue;
    std::fprintf(stderr,
                 "kiln: error: %s: %s has not completed after %.0f s: another rank has died or stopped responding "
                 "(collective timeout %.0f s); exiting so that the launcher ends the job\n",
                 who_.c_str(), in_flight_, waited, timeout_s_);
    std::fflush(stderr);
    // Not exit(): atexit handlers would call MPI_Finalize, which waits for the missing rank.
    std::_Exit(1);
  }
}

}  // namespace kiln
