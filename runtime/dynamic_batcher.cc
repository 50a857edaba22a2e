#include "runtime/dynamic_batcher.h"

#include <cstring>

#include "core/error.h"
#include "core/stream.h"

namespace kiln::runtime {

namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Rows [begin, begin + rows) of the batch predictions.
Predictions slice(const Predictions& all, int64_t begin, int64_t rows) {
  Predictions p;
  p.rows = rows;
  p.output_width = all.output_width;
  p.output_is_int = all.output_is_int;
  p.output_is_string = all.output_is_string;
  auto part = [&](const auto& v, size_t w) {
    const auto from = v.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(begin) * w);
    return std::decay_t<decltype(v)>(from, from + static_cast<ptrdiff_t>(static_cast<size_t>(rows) * w));
  };
  for (size_t i = 0; i < all.output_width.size(); ++i) {
    const size_t w = static_cast<size_t>(all.output_width[i]);
    // Only the output's own kind holds values; the other two stay empty.
    const bool is_float = !all.output_is_int[i] && !all.output_is_string[i];
    p.float_outputs.push_back(is_float ? part(all.float_outputs[i], w) : std::vector<float>());
    p.int_outputs.push_back(all.output_is_int[i] ? part(all.int_outputs[i], w) : std::vector<int64_t>());
    p.string_outputs.push_back(all.output_is_string[i] ? part(all.string_outputs[i], w) : std::vector<std::string>());
  }
  return p;
}

}  // namespace

DynamicBatcher::DynamicBatcher(std::shared_ptr<const Servable> servable, const BatchingConfig& config,
                               std::shared_ptr<VersionMetrics> metrics, DeviceExecutor& device)
    : servable_(std::move(servable)), config_(config), metrics_(std::move(metrics)), device_(device) {
  if (config_.max_batch_size() <= 0) fail("batching.max_batch_size must be > 0, got ", config_.max_batch_size());
  if (config_.max_queue_size() <= 0) fail("batching.max_queue_size must be > 0, got ", config_.max_queue_size());
  if (config_.max_queue_delay_us() < 0) fail("batching.max_queue_delay_us must be >= 0");
  if (config_.instances() < 0) fail("batching.instances must be >= 0, got ", config_.instances());
  const bool cpu = device_.device().is_cpu();
  const int n = !cpu ? 1 : config_.instances() > 0 ? config_.instances() : std::max(1, device_.cpu_instances());
  for (int i = 0; i < n; ++i) {
    auto instance = std::make_unique<Instance>();
    instance->lock = cpu ? &instance->own : &device_.lock();
    instance->runner = std::make_unique<ModelRunner>(*servable_, device_.device(), device_.precision(), device_.graphs(),
                                                     config_.max_batch_size());
    instances_.push_back(std::move(instance));
  }
  thread_ = std::thread([this] { loop(); });
}

DynamicBatcher::~DynamicBatcher() {
  std::deque<BatchTask> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    left.swap(queue_);
  }
  cv_.notify_all();
  thread_.join();
  for (BatchTask& t : left) {
    BatchOutcome o;
    o.status = 503;
    o.error = "the model version is unloading";
    t.done(std::move(o));
  }
}

bool DynamicBatcher::submit(BatchTask& task, bool run_now) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_ || queued_rows_ + task.inputs.batch > config_.max_queue_size()) return false;
    queued_rows_ += task.inputs.batch;
    queue_.push_back(std::move(task));
  }
  if (config_.max_queue_delay_us() > 0) {
    cv_.notify_one();
  } else if (run_now) {
    run_queued();
  }
  return true;
}

void DynamicBatcher::run_queued() {
  if (config_.max_queue_delay_us() > 0) return;  // only the batcher's thread executes
  Instance* instance = try_acquire();
  if (!instance) {
    cv_.notify_one();
    return;
  }
  // One batch at most on the calling (I/O) thread: the connections it also serves must not wait
  // behind a stream of batches. What is left goes to the batcher's thread.
  bool more;
  {
    std::lock_guard<std::mutex> held(*instance->lock, std::adopt_lock);
    more = drain(*instance, 1);
  }
  if (more) cv_.notify_one();
}

void DynamicBatcher::warm_up(const transform::ModelInputs& inputs) {
  if (cpu_threads() != config_.threads()) set_cpu_threads(config_.threads());
  for (auto& instance : instances_) {
    std::lock_guard<std::mutex> held(*instance->lock);
    servable_->postprocess(instance->runner->run(inputs), inputs.batch, instance->runner->output_width());
  }
}

DynamicBatcher::Instance* DynamicBatcher::try_acquire() {
  thread_local size_t last = 0;
  const size_t n = instances_.size();
  for (size_t i = 0; i < n; ++i) {
    const size_t k = (last + i) % n;
    if (instances_[k]->lock->try_lock()) {
      last = k;
      return instances_[k].get();
    }
  }
  return nullptr;
}

int64_t DynamicBatcher::queued_rows() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queued_rows_;
}

bool DynamicBatcher::drain(Instance& instance, int64_t max_batches) {
  const int64_t max_batch = config_.max_batch_size();
  for (int64_t done = 0;; ++done) {
    if (done == max_batches) {
      std::lock_guard<std::mutex> lock(mutex_);
      return !queue_.empty();
    }
    std::deque<BatchTask> batch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      int64_t rows = 0;
      // At least one request, even one larger than max_batch_size (it runs alone).
      while (!queue_.empty() && (batch.empty() || rows + queue_.front().inputs.batch <= max_batch)) {
        rows += queue_.front().inputs.batch;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_rows_ -= rows;
    }
    if (batch.empty()) return false;
    execute(instance, batch);
  }
}

void DynamicBatcher::loop() {
  const auto delay = std::chrono::microseconds(config_.max_queue_delay_us());
  const int64_t max_batch = config_.max_batch_size();
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    if (delay.count() > 0) {
      const auto until = queue_.front().arrival + delay;
      cv_.wait_until(lock, until, [&] { return stop_ || queued_rows_ >= max_batch; });
      if (stop_) return;
    }
    lock.unlock();
    Instance* instance = try_acquire();
    if (!instance) {
      instance = instances_.front().get();
      instance->lock->lock();
    }
    {
      std::lock_guard<std::mutex> held(*instance->lock, std::adopt_lock);
      drain(*instance, -1);
    }
    lock.lock();
  }
}

void DynamicBatcher::execute(Instance& instance, std::deque<BatchTask>& batch) {
  // OpenMP's thread count is per calling thread, and batches run on I/O threads and on this
  // batcher's thread alike.
  if (cpu_threads() != config_.threads()) set_cpu_threads(config_.threads());
  VersionMetrics* const metrics = metrics_.get();
  const auto start = Clock::now();
  std::vector<const transform::ModelInputs*> parts;
  std::deque<BatchTask> live;
  for (BatchTask& t : batch) {
    if (start > t.deadline) {
      BatchOutcome o;
      o.status = 504;
      o.error = "the request waited longer than its deadline in the queue";
      o.queue_seconds = seconds(start - t.arrival);
      t.done(std::move(o));
      continue;
    }
    live.push_back(std::move(t));
  }
  if (live.empty()) return;
  for (const BatchTask& t : live) parts.push_back(&t.inputs);
  Predictions all;
  std::string error;
  double compute = 0;
  try {
    transform::ModelInputs joined = concat_inputs(parts);
    const auto c0 = Clock::now();
    const float* raw = instance.runner->run(joined);
    all = servable_->postprocess(raw, joined.batch, instance.runner->output_width());
    compute = seconds(Clock::now() - c0);
    metrics->compute_seconds.observe(compute);
    metrics->batch_size.observe(static_cast<double>(joined.batch));
  } catch (const std::exception& e) {
    error = e.what();
  }
  int64_t row = 0;
  for (BatchTask& t : live) {
    BatchOutcome o;
    o.queue_seconds = seconds(start - t.arrival);
    o.compute_seconds = compute;
    metrics->queue_seconds.observe(o.queue_seconds);
    if (!error.empty()) {
      o.status = 500;
      o.error = "model execution failed: " + error;
    } else {
      o.predictions = slice(all, row, t.inputs.batch);
      o.keys = std::move(t.inputs.keys);
    }
    row += t.inputs.batch;
    t.done(std::move(o));
  }
}

}  // namespace kiln::runtime
