#pragma once
// Batched, shuffled, prefetched input. The example order is a pure function of (seed, epoch), so
// a run resumed with seek(epoch, batch) sees exactly the batches an uninterrupted run would.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace kiln::io {

// A random-access set of examples; gather() copies the examples `indices` into the batch tensors.
class ExampleSource {
 public:
  virtual ~ExampleSource() = default;
  virtual int64_t size() const = 0;
  // Per-example shapes and dtypes of each output tensor.
  virtual std::vector<std::pair<Shape, DType>> signature() const = 0;
  // out[i] is preallocated with shape signature()[i].first.with_batch(count) and dtype
  // signature()[i].second. Called from the prefetch thread; must not modify the source.
  virtual void gather(const int64_t* indices, int64_t count, std::vector<Tensor>& out) const = 0;
};

// Holds whole arrays in memory (first dim = example). A u8 column can be converted to f32 with a
// scale (pixels / 255).
class ArraySource : public ExampleSource {
 public:
  struct Column {
    Tensor data;
    bool to_float = false;
    float scale = 1.0f;
  };
  explicit ArraySource(std::vector<Column> columns);

  int64_t size() const override { return size_; }
  std::vector<std::pair<Shape, DType>> signature() const override;
  void gather(const int64_t* indices, int64_t count, std::vector<Tensor>& out) const override;

 private:
  std::vector<Column> columns_;
  int64_t size_ = 0;
};

struct Batch {
  int64_t epoch = 0;
  int64_t index = 0;  // batch index within the epoch
  int64_t size = 0;   // examples in this batch (smaller for the last batch of an epoch)
  // With shards: the whole batch across shards, and where this shard's part starts in it.
  int64_t global_size = 0;
  int64_t global_offset = 0;
  std::vector<Tensor> tensors;
};

struct PipelineOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  uint64_t seed = 0;
  bool drop_remainder = false;
  // Batches prepared ahead on a background thread; 0 builds each batch inside next().
  int prefetch = 2;
  // Data-parallel ranks: batch_size is the global batch, drawn in the same order for every
  // shard count, and shard i takes the i-th of shard_count contiguous, near-equal slices of
  // it. So N ranks see together exactly the batches one process with batch_size sees.
  int shard_index = 0;
  int shard_count = 1;
};

// Where batches come from: batch `index` of `epoch`, a pure function of the two, so a stream can
// be positioned anywhere (resume). make_batch is called from one thread at a time.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batches_per_epoch() const = 0;
  virtual Batch make_batch(int64_t epoch, int64_t index) = 0;
};

// Batches of a random-access ExampleSource: each epoch a permutation of all examples, cut into
// global batches, each cut into the shards' slices (PipelineOptions).
class ExampleBatches final : public BatchSource {
 public:
  ExampleBatches(std::shared_ptr<const ExampleSource> source, PipelineOptions options);
  int64_t batches_per_epoch() const override { return batches_per_epoch_; }
  Batch make_batch(int64_t epoch, int64_t index) override;

 private:
  const std::vector<int64_t>& order(int64_t epoch);

  std::shared_ptr<const ExampleSource> source_;
  PipelineOptions options_;
  std::vector<std::pair<Shape, DType>> signature_;
  int64_t batches_per_epoch_ = 0;
  // The permutation of the most recent epoch.
  int64_t order_epoch_ = -1;
  std::vector<int64_t> order_;
};

// Runs a BatchSource ahead of its consumer on a background thread (prefetch batches). Batch
// tensors are freshly allocated for every batch, so a consumer may keep a Batch for as long as it
// likes. If make_batch throws, next() rethrows it and the stream stays at that batch (the next
// call retries it). next() and seek() are meant for one consumer thread.
class InputPipeline {
 public:
  InputPipeline(std::shared_ptr<const ExampleSource> source, PipelineOptions options);
  // prefetch: batches prepared ahead; 0 builds each batch inside next().
  InputPipeline(std::shared_ptr<BatchSource> batches, int prefetch);
  ~InputPipeline();  // stops the prefetch thread cleanly
  InputPipeline(const InputPipeline&) = delete;
  InputPipeline& operator=(const InputPipeline&) = delete;

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // Positions the stream at (epoch, batch index): resume; (0, 0) initially. A batch index of
  // batches_per_epoch() or more carries into later epochs.
  void seek(int64_t epoch, int64_t batch_index);
  // The next batch; epochs follow each other forever (the caller decides when to stop).
  Batch next();

 private:
  struct Item {
    Batch batch;
    std::exception_ptr error;
  };
  void producer_loop();
  void advance(int64_t& epoch, int64_t& index) const;

  std::shared_ptr<BatchSource> batches_;  // used by the producing thread only
  int prefetch_ = 2;
  int64_t batches_per_epoch_ = 0;

  std::mutex mutex_;
  std::condition_variable produced_;  // the queue gained an item
  std::condition_variable wanted_;    // room in the queue, a seek, an error consumed, or stop
  std::deque<Item> queue_;
  int64_t produce_epoch_ = 0, produce_index_ = 0;  // the next batch the producer builds
  uint64_t generation_ = 0;  // bumped by seek(); batches built for an older one are dropped
  bool error_pending_ = false;  // producer pauses after queueing an error
  bool stop_ = false;
  std::thread producer_;
};

}  // namespace kiln::io
