#pragma once
// DynamicBatcher: the queue of one model version. Requests (already transformed on the I/O
// threads) wait here and run in batches of up to max_batch_size rows.
//
// Batches form without waiting: an I/O thread queues each request it reads and, once it has read
// all that arrived in the same round, runs the queue as one batch on a free instance (run_queued;
// one batch, so the connections it also serves never wait behind a stream of batches). Requests
// arriving while batches run queue up and go together into the next one. So a lightly loaded
// server answers without a thread hand-off and a busy one runs large batches. The batcher's own
// thread runs what the I/O threads left (every instance busy, or more than one batch queued).
// With max_queue_delay_us > 0 only that thread executes, after waiting up to the delay for a
// batch to fill.
//
// On the CPU a version has several instances (batching.instances, by default one per I/O thread),
// each a model of its own: the I/O threads run their batches side by side, as nginx's workers
// do, instead of handing requests to whichever thread holds the one model. On sim and CUDA there
// is one instance and it takes the device's lock, so batches of all versions take turns on the
// device.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/device.h"
#include "proto/device.pb.h"
#include "proto/serve_config.pb.h"
#include "runtime/metrics.h"
#include "runtime/servable.h"

namespace kiln::runtime {

using Clock = std::chrono::steady_clock;

// Serializes compute on a GPU or sim device, so model versions and models take turns on it.
// `cpu_instances`: the instances per version on the CPU when batching.instances is 0.
class DeviceExecutor {
 public:
  explicit DeviceExecutor(const Device& device = Device::cpu(), Precision::Kind precision = Precision::DEFAULT,
                          bool graphs = false, int cpu_instances = 1)
      : device_(device), precision_(precision), graphs_(graphs), cpu_instances_(cpu_instances) {}
  std::mutex& lock() { return mutex_; }
  int cpu_instances() const { return cpu_instances_; }
  // Where the models run (ServeConfig's device), and ServeConfig's precision.
  const Device& device() const { return device_; }
  Precision::Kind precision() const { return precision_; }
  bool graphs() const { return graphs_; }

 private:
  std::mutex mutex_;
  Device device_;
  Precision::Kind precision_;
  bool graphs_;
  int cpu_instances_;
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
  // With max_queue_delay_us 0, `run_now` runs a batch on the calling thread when an instance is
  // free; an I/O thread passes false and calls run_queued() once it has read the other requests
  // that arrived with this one, so they run as one batch.
  bool submit(BatchTask& task, bool run_now = true);
  // Runs the queued requests as one batch on this thread if an instance is free; otherwise (or
  // when more are left) the batcher's thread takes them.
  void run_queued();
  // Runs `inputs` once on every instance, before traffic, so each has allocated its buffers;
  // throws what the model throws.
  void warm_up(const transform::ModelInputs& inputs);
  int64_t queued_rows() const;
  const BatchingConfig& config() const { return config_; }
  int instances() const { return static_cast<int>(instances_.size()); }

 private:
  struct Instance {
    std::mutex own;
    std::mutex* lock = nullptr;  // `own`, or the device's lock off the CPU
    std::unique_ptr<ModelRunner> runner;
  };
  void loop();
  // A free instance, locked (its lock adopted by the caller), or null when all are busy. Each
  // thread starts with the instance it used last, to find its weights in its own cache.
  Instance* try_acquire();
  // Runs queued requests in batches on `instance` (locked by the caller) until the queue is empty
  // or max_batches (-1: no limit) ran; true when requests are left.
  bool drain(Instance& instance, int64_t max_batches);
  void execute(Instance& instance, std::deque<BatchTask>& batch);

  std::shared_ptr<const Servable> servable_;
  BatchingConfig config_;
  const std::shared_ptr<VersionMetrics> metrics_;  // where served batches are recorded (warm-up is not)
  DeviceExecutor& device_;
  std::vector<std::unique_ptr<Instance>> instances_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<BatchTask> queue_;
  int64_t queued_rows_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln::runtime
