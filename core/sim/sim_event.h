#pragma once
// A sim device event: a mark in a SimStream's queue, as a cudaEvent_t is. record() puts the mark
// behind every task queued on the stream so far; it is reached when the stream gets there. Another
// stream can wait for it (wait_on_event), the host can wait for it (synchronize) or poll it
// (query). Re-recording moves the mark for later waits; waits already queued keep the mark they
// saw, as with cudaEventRecord / cudaStreamWaitEvent.
//
//   SimEvent written;
//   producer.enqueue(write_x);   written.record(producer);
//   consumer.wait_on_event(written);   consumer.enqueue(read_x);   // read_x sees write_x's result
#include <future>
#include <mutex>

namespace kiln::sim {

class SimStream;

class SimEvent {
 public:
  SimEvent() = default;
  SimEvent(const SimEvent&) = delete;
  SimEvent& operator=(const SimEvent&) = delete;

  void record(SimStream& stream);
  // True once the mark is reached; true for an event never recorded (as cudaEventQuery).
  bool query() const;
  // Blocks the host until the mark is reached; returns at once for an event never recorded.
  void synchronize() const;

 private:
  friend void wait_on_event(SimStream& stream, const SimEvent& event);
  std::shared_future<void> mark() const;

  mutable std::mutex mutex_;
  std::shared_future<void> reached_;  // not valid() until the first record()
};

// Tasks queued on `stream` after this call start only once `event`'s current mark is reached
// (cudaStreamWaitEvent). A never-recorded event is no wait at all. The host does not block.
void wait_on_event(SimStream& stream, const SimEvent& event);

}  // namespace kiln::sim
