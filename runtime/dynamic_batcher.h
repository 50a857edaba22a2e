#pragma once
// DynamicBatcher: the queue of one model version. Requests (already transformed on the I/O
// threads) wait here; the batcher's thread takes as many as fit in max_batch_size, runs them as
// one batch on the device's executor and hands each request its rows back.
//
// Batches form greedily (leader/follower): a request that finds the device idle is executed at
// once by the thread that submitted it, together with whatever else is queued (one batch; the
// rest is left to the batcher's thread, so an I/O thread never runs batch after batch); requests arriving
// while a batch runs queue up and go together into the next one. So a lightly loaded server
// answers without a thread hand-off and a busy one runs large batches. The batcher's own thread
// picks up requests queued when no one is executing. With max_queue_delay_us > 0 only that thread
// executes, after waiting up to the delay for a batch to fill.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/device.h"
#include "proto/device.pb.h"
#include "proto/serve_config.pb.h"
#include "runtime/metrics.h"
#include "runtime/servable.h"

namespace kiln::runtime {

using Clock = std::chrono::steady_clock;

// Serializes compute on one device, so model versions and models take turns instead of
// competing for the same cores.
class DeviceExecutor {
 public:
  explicit DeviceExecutor(const Device& device = Device::cpu(), Precision::Kind precision = Precision::DEFAULT,
                          bool graphs = false)
      : device_(device), precision_(precision), graphs_(graphs) {}
  std::mutex& lock() { return mutex_; }
  // Where the models run (ServeConfig's device), and ServeConfig's precision.
  const Device& device() const { return device_; }
  Precision::Kind precision() const { return precision_; }
  bool graphs() const { return graphs_; }

 private:
  std::mutex mutex_;
  Device device_;
  Precision::Kind precision_;
  bool graphs_;
};

struct BatchOutcome {
  int status = 200;  // 200, 500 (model error), 503 (shutting down), 504 (deadline passed in queue)
  std::string error;
  Predictions predictions;  // this request's rows
  std::vector<std::string> keys;
  double queue_seconds = 0, compute_seconds = 0;
};

struct BatchTask {
  transform::ModelInputs inputs;
  Clock::time_point arrival, deadline;
  std::function<void(BatchOutcome&&)> done;  // called on the batcher thread
};

class DynamicBatcher {
 public:
  DynamicBatcher(std::shared_ptr<const Servable> servable, const BatchingConfig& config,
                 std::shared_ptr<VersionMetrics> metrics, DeviceExecutor& device);
  // Fails whatever is still queued with 503 and joins the thread.
  ~DynamicBatcher();

  // false when the queue is full or closed: the caller answers 503 and `task` is untouched.
  // Warm-up batches (a full batch before traffic) are not held to max_queue_size.
  bool submit(BatchTask& task, bool warm_up = false);
  int64_t queued_rows() const;
  // Where batches are recorded; set before the version takes traffic (warm-up batches go to a
  // throwaway set, so they do not show in the served statistics).
  void set_metrics(std::shared_ptr<VersionMetrics> metrics) {
    std::lock_guard<std::mutex> lock(mutex_);
    metrics_ = std::move(metrics);
  }
  const BatchingConfig& config() const { return config_; }

 private:
  void loop();
  // Runs queued requests in batches until the queue is empty or max_batches (-1: no limit) ran;
  // true when requests are left. The caller holds the device lock.
  bool drain(int64_t max_batches);
  void execute(std::deque<BatchTask>& batch);

  std::shared_ptr<const Servable> servable_;
  BatchingConfig config_;
  std::shared_ptr<VersionMetrics> metrics_;
  DeviceExecutor& device_;
  std::unique_ptr<ModelRunner> runner_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<BatchTask> queue_;
  int64_t queued_rows_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln::runtime
