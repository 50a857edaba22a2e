#include "io/input_pipeline.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/philox.h"

namespace kiln::io {

ArraySource::ArraySource(std::vector<Column> columns) : columns_(std::move(columns)) {
  if (columns_.empty()) fail("ArraySource needs at least one column");
  for (size_t i = 0; i < columns_.size(); ++i) {
    const Tensor& t = columns_[i].data;
    if (!t.defined()) fail("ArraySource column ", i, " is undefined");
    if (!t.device().is_cpu()) fail("ArraySource column ", i, " is on ", t.device().to_string(), ", not the CPU");
    if (t.shape().rank() < 1) fail("ArraySource column ", i, " is a scalar; the first dim must index examples");
    if (columns_[i].to_float && t.dtype() != DType::u8)
      fail("ArraySource column ", i, ": to_float converts u8 data, but the column is ", dtype_name(t.dtype()));
    if (i == 0) {
      size_ = t.dim(0);
    } else if (t.dim(0) != size_) {
      fail("ArraySource column ", i, " has ", t.dim(0), " examples but column 0 has ", size_);
    }
  }
}

std::vector<std::pair<Shape, DType>> ArraySource::signature() const {
  std::vector<std::pair<Shape, DType>> sig;
  for (const Column& c : columns_)
    sig.emplace_back(c.data.shape().drop_batch(), c.to_float ? DType::f32 : c.data.dtype());
  return sig;
}

void ArraySource::gather(const int64_t* indices, int64_t count, std::vector<Tensor>& out) const {
  KILN_CHECK(out.size() == columns_.size(), "gather into ", out.size(), " tensors, source has ", columns_.size());
  for (int64_t b = 0; b < count; ++b) KILN_CHECK(indices[b] >= 0 && indices[b] < size_, "example ", indices[b]);
  for (size_t c = 0; c < columns_.size(); ++c) {
    const Column& col = columns_[c];
    const int64_t row = col.data.shape().drop_batch().numel();
    KILN_CHECK(out[c].numel() == count * row);
    if (col.to_float) {
      const uint8_t* src = col.data.data<uint8_t>();
      float* dst = out[c].data<float>();
      for (int64_t b = 0; b < count; ++b) {
        const uint8_t* s = src + indices[b] * row;
        float* d = dst + b * row;
        for (int64_t k = 0; k < row; ++k) d[k] = static_cast<float>(s[k]) * col.scale;
      }
    } else {
      KILN_CHECK(out[c].dtype() == col.data.dtype());
      const size_t row_bytes = static_cast<size_t>(row) * dtype_size(col.data.dtype());
      const char* src = static_cast<const char*>(col.data.raw());
      char* dst = static_cast<char*>(out[c].raw());
      for (int64_t b = 0; b < count; ++b)
        std::memcpy(dst + static_cast<size_t>(b) * row_bytes, src + static_cast<size_t>(indices[b]) * row_bytes,
                    row_bytes);
    }
  }
}

ExampleBatches::ExampleBatches(std::shared_ptr<const ExampleSource> source, PipelineOptions options)
    : source_(std::move(source)), options_(options) {
  if (!source_) fail("input pipeline needs an example source");
  if (options_.batch_size < 1) fail("input pipeline batch_size must be at least 1, got ", options_.batch_size);
  if (options_.shard_count < 1 || options_.shard_index < 0 || options_.shard_index >= options_.shard_count)
    fail("input pipeline shard ", options_.shard_index, " of ", options_.shard_count, " does not exist");
  signature_ = source_->signature();
  const int64_t n = source_->size();
  batches_per_epoch_ = options_.drop_remainder ? n / options_.batch_size
                                               : (n + options_.batch_size - 1) / options_.batch_size;
}

InputPipeline::InputPipeline(std::shared_ptr<const ExampleSource> source, PipelineOptions options)
    : InputPipeline(std::make_shared<ExampleBatches>(std::move(source), options), options.prefetch) {}

InputPipeline::InputPipeline(std::shared_ptr<BatchSource> batches, int prefetch)
    : batches_(std::move(batches)), prefetch_(prefetch) {
  if (prefetch_ < 0) fail("input pipeline prefetch must be 0 or more, got ", prefetch_);
  batches_per_epoch_ = batches_->batches_per_epoch();
}

InputPipeline::~InputPipeline() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wanted_.notify_all();
  if (producer_.joinable()) producer_.join();
}

void InputPipeline::advance(int64_t& epoch, int64_t& index) const {
  if (++index >= batches_per_epoch_) {
    index = 0;
    ++epoch;
  }
}

void InputPipeline::seek(int64_t epoch, int64_t batch_index) {
  if (epoch < 0 || batch_index < 0) fail("input pipeline cannot seek to epoch ", epoch, ", batch ", batch_index);
  if (batches_per_epoch_ > 0) {
    epoch += batch_index / batches_per_epoch_;
    batch_index %= batches_per_epoch_;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.clear();
  produce_epoch_ = epoch;
  produce_index_ = batch_index;
  ++generation_;  // a batch the producer is building right now belongs to the old position
  error_pending_ = false;
  wanted_.notify_all();
}

const std::vector<int64_t>& ExampleBatches::order(int64_t epoch) {
  if (order_epoch_ != epoch) {
    order_.resize(static_cast<size_t>(source_->size()));
    std::iota(order_.begin(), order_.end(), int64_t{0});
    if (options_.shuffle) {
      // Fisher-Yates on Philox stream `epoch`: the permutation depends on (seed, epoch) only.
      PhiloxGenerator gen(options_.seed, static_cast<uint64_t>(epoch));
      gen.shuffle(order_);
    }
    order_epoch_ = epoch;
  }
  return order_;
}

Batch ExampleBatches::make_batch(int64_t epoch, int64_t index) {
  if (batches_per_epoch_ == 0)
    fail("input pipeline has no batches: ", source_->size(), " examples, batch size ", options_.batch_size,
         options_.drop_remainder ? " with drop_remainder" : "");
  const std::vector<int64_t>& perm = order(epoch);
  const int64_t global_begin = index * options_.batch_size;
  const int64_t global_count = std::min<int64_t>(options_.batch_size, source_->size() - global_begin);
  const int64_t lo = global_count * options_.shard_index / options_.shard_count;
  const int64_t hi = global_count * (options_.shard_index + 1) / options_.shard_count;
  Batch batch;
  batch.epoch = epoch;
  batch.index = index;
  batch.size = hi - lo;
  batch.global_size = global_count;
  batch.global_offset = lo;
  for (const auto& [shape, dtype] : signature_)
    batch.tensors.push_back(Tensor::empty(shape.with_batch(batch.size), dtype));
  if (batch.size > 0) source_->gather(perm.data() + global_begin + lo, batch.size, batch.tensors);
  return batch;
}

void InputPipeline::producer_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wanted_.wait(lock, [this] {
      return stop_ || (!error_pending_ && queue_.size() < static_cast<size_t>(prefetch_));
    });
    if (stop_) return;
    const int64_t epoch = produce_epoch_, index = produce_index_;
    const uint64_t generation = generation_;
    lock.unlock();
    Item item;
    try {
      item.batch = batches_->make_batch(epoch, index);
    } catch (...) {
      item.error = std::current_exception();
      item.batch.epoch = epoch;
      item.batch.index = index;
    }
    lock.lock();
    if (generation != generation_) continue;  // seek() moved the stream meanwhile
    if (item.error) {
      error_pending_ = true;  // pause until the consumer has seen it and asks again
    } else {
      advance(produce_epoch_, produce_index_);
    }
    queue_.push_back(std::move(item));
    produced_.notify_one();
  }
}

Batch InputPipeline::next() {
  if (batches_per_epoch_ == 0) {
    batches_->make_batch(0, 0);  // the source says why it has none
    fail("input pipeline has no batches");
  }
  if (prefetch_ == 0) {
    Batch batch = batches_->make_batch(produce_epoch_, produce_index_);  // a throw leaves the position alone
    advance(produce_epoch_, produce_index_);
    return batch;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  // Started on first use, so a seek() right after construction wastes no work.
  if (!producer_.joinable()) producer_ = std::thread([this] { producer_loop(); });
  if (error_pending_ && queue_.empty()) {
    // The previous call rethrew an error; the producer waited for this call to retry, so a
    // caller that fixed something in between sees the fix.
    error_pending_ = false;
    wanted_.notify_all();
  }
  produced_.wait(lock, [this] { return !queue_.empty(); });
  Item item = std::move(queue_.front());
  queue_.pop_front();
  if (item.error) {
    // Stay at the failed batch; the producer stays paused (error_pending_) until the next call.
    produce_epoch_ = item.batch.epoch;
    produce_index_ = item.batch.index;
    ++generation_;
    lock.unlock();
    std::rethrow_exception(item.error);
  }
  wanted_.notify_all();
  return std::move(item.batch);
}

}  // namespace kiln::io
