#pragma once
// Ends a rank that waits too long inside a collective. When a peer dies, the launcher (mpirun,
// srun --kill-on-bad-exit) usually ends the job at once; a peer that hangs (stopped, swapping,
// cut off) never exits, and without this every other rank would wait forever. The watchdog
// thread checks the call in flight every 100 ms; past the timeout it prints the rank and the
// call it was waiting in and exits with status 1, which ends the job.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace kiln {

class CollectiveWatchdog {
 public:
  // `who` prefixes the message ("rank 0/2").
  explicit CollectiveWatchdog(std::string who);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // 0 disables the limit.
  void set_timeout(double seconds);

  // Marks `what` in flight for the guard's lifetime. One call at a time (collectives of one
  // communicator are serialised anyway).
  class Guard {
   public:
    explicit Guard(CollectiveWatchdog& w) : w_(w) {}
    ~Guard() { w_.end(); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    CollectiveWatchdog& w_;
  };
  [[nodiscard]] Guard watch(const char* what);

 private:
  void end();
  void loop();

  std::string who_;
  std::mutex mutex_;
  std::condition_variable wake_;
  double timeout_s_ = 0;
  const char* in_flight_ = nullptr;
  std::chrono::steady_clock::time_point since_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln
