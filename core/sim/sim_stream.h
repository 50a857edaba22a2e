#pragma once
// A sim device stream: one worker thread that runs the tasks queued on it, one at a time, in the
// order they were queued. enqueue() returns at once, as a kernel launch does, so the host runs
// ahead of the stream exactly as it runs ahead of a GPU: reading a result before synchronize(), or
// using it on another stream without an event (core/sim/sim_event.h), gives poison or stale data.
// Copies, fills and the stream-ordered free are in core/sim/sim_copy.h.
//
// Errors (what CUDA calls asynchronous errors): the first exception a task throws is kept and
// rethrown, with its original type, by the next synchronize() on this stream, which then clears
// it. Work tasks queued after the failed one and before that synchronize() are skipped (their
// inputs are suspect), while control tasks (event records and waits, stream-ordered frees) still
// run, so other streams never hang on this one and memory is still released. Unlike CUDA's sticky
// errors the failure is per stream: other streams keep running, and this one is usable again after
// the synchronize() that reported it. An error still unreported when the stream is destroyed is
// printed to stderr.
//
// Jitter: with a seed set (KILN_SIM_JITTER=seed or seed:max_delay_us in the environment, or
// set_sim_jitter()), the worker sleeps a random 0..max_delay_us microseconds before every task, so
// a missing event or synchronize shows up in tests as a wrong result instead of passing because
// the host happened to be slower. Each stream draws its delays from its own generator, seeded from
// the seed and the stream's creation number.
//
// Usage:
//   SimStream stream;                          // device sim:0
//   stream.enqueue([=] { kernel(sim_memory().untag_array(x, n), ...); });  // x: a sim pointer
//   const Stream s = stream.view();            // the kiln::Stream kernels and Tensors take
//   stream.synchronize();                      // or stream.view().synchronize()
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/stream.h"

namespace kiln::sim {

struct SimJitter {
  uint64_t seed = 0;
  int max_delay_us = 200;
};

// KILN_SIM_JITTER's syntax: "seed" or "seed:max_delay_us", non-negative integers; "" is no
// jitter. Anything else throws kiln::Error.
std::optional<SimJitter> parse_sim_jitter(const std::string& text);
// Jitter for streams created from now on (streams that exist keep theirs); nullopt turns it off.
void set_sim_jitter(std::optional<SimJitter> jitter);
// The jitter new streams get: initially parsed from KILN_SIM_JITTER (a malformed value throws).
std::optional<SimJitter> sim_jitter();
// Sim streams the calling thread is capturing a graph on (it may not allocate while it does,
// as under CUDA's thread-local capture mode).
int sim_streams_capturing();

class SimStream {
 public:
  explicit SimStream(int device_index = 0);
  // Waits for the tasks already queued, then stops the worker.
  ~SimStream();
  SimStream(const SimStream&) = delete;
  SimStream& operator=(const SimStream&) = delete;

  // The default stream of sim device `device_index`: created on first use, never destroyed. Unlike
  // CUDA's legacy default stream it does not synchronise with other streams.
  static SimStream& default_stream(int device_index = 0);
  // The stream behind a sim Stream view (a null handle means the device's default stream).
  static SimStream& from(const Stream& stream);

  // The non-owning view that kernels take; view().synchronize() is synchronize().
  Stream view() { return Stream::sim(this, device_index_); }
  int device_index() const { return device_index_; }

  // Queues the kernel `task` behind every task queued before it; returns at once. As a CUDA
  // launch, it fails (kiln::Error) unless this stream's device is the calling thread's current
  // sim device (core/current_device.h).
  void enqueue(std::function<void()> task);
  // The same for a copy or a fill, which CUDA queues to a stream of any device.
  void enqueue_copy(std::function<void()> task);
  // Queues a task that runs even after an earlier task failed: bookkeeping that must not be
  // skipped (event records and waits, frees).
  void enqueue_control(std::function<void()> task);
  // Blocks until every task queued before the call has run, then rethrows the first error one of
  // them threw since the last synchronize(). Calling it from one of this stream's tasks is an error.
  void synchronize();
  // True when every task queued so far has run (cudaStreamQuery). Never throws a task's error.
  bool idle() const;

  // Graph capture (cudaStreamBeginCapture / EndCapture): between the two, queued tasks are
  // recorded instead of run; end_capture() returns them, and replay() queues them again, with
  // the arguments and memory they were captured with. While a stream captures, synchronize() on
  // it throws, and so does allocating sim memory on the thread that began the capture
  // (sim_allocator.h), as CUDA forbids both. begin and end on the same thread.
  struct Recorded {
    std::function<void()> run;
    bool control = false;
  };
  void begin_capture();
  std::vector<Recorded> end_capture();
  void replay(const std::vector<Recorded>& tasks);

 private:
  struct Task {
    std::function<void()> run;
    bool control = false;
  };
  void push(Task task);
  void work();
  void sleep_jitter();

  const int device_index_;
  std::optional<std::mt19937_64> jitter_random_;
  int jitter_max_delay_us_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable queued_;   // the worker waits for tasks
  std::condition_variable progress_; // synchronize() waits for completions
  std::deque<Task> queue_;
  uint64_t enqueued_ = 0;
  uint64_t completed_ = 0;
  std::exception_ptr error_;         // first failure since the last synchronize()
  bool stopping_ = false;
  bool capturing_ = false;
  std::vector<Recorded> captured_;
  std::thread worker_;               // started last in the constructor
};

}  // namespace kiln::sim
