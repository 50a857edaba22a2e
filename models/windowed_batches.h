#pragma once
// Batches drawn from windows of streamed examples (docs/data.md, "Streaming"): the examples of
// an epoch arrive as consecutive windows of shuffle_buffer examples, each permuted by (seed,
// epoch, rank, window), and batch i of epoch e is cut from window i*batch/window — a pure function
// of (e, i), so a stream can be positioned anywhere (resume). Where the windows come from is the
// subclass's: example shards (models/shard_stream.h) or CSV (models/csv_stream.h).
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "io/example_shard.h"
#include "io/input_pipeline.h"
#include "models/example_records.h"

namespace kiln::models {

struct StreamOptions {
  int64_t batch_size = 32;  // this rank's
  bool shuffle = true;
  uint64_t seed = 0;
  int64_t shuffle_buffer = 131072;  // examples per window (rounded up to whole batches)
  // Training: every rank runs the same number of batches per epoch, each taking the fewest rows
  // any rank has, so no rank waits at an epoch's end for one that has no batch left. Evaluation:
  // every example of the rank, once; ranks may run different numbers of batches.
  bool equal_steps = true;
};

// Examples [index * window, ...) of an epoch, in the order batches take them.
struct StreamWindow {
  int64_t epoch = -1, index = -1;
  std::shared_ptr<ExampleRecords> examples;
  std::vector<int64_t> order;  // positions in `examples`
};

// Philox streams of a stream's draws: one per (purpose, epoch, rank, window), distinct for any
// realistic counts (epochs < 2^24, ranks < 2^12, windows < 2^26).
uint64_t stream_draw(uint64_t purpose, int64_t epoch, int rank, int64_t window);
inline constexpr uint64_t kSourceOrderDraw = 1, kWindowOrderDraw = 2;

class WindowedBatches : public io::BatchSource {
 public:
  int64_t batches_per_epoch() const final { return batches_per_epoch_; }
  io::Batch make_batch(int64_t epoch, int64_t index) final;
  int64_t examples_per_epoch() const { return epoch_rows_; }
  int64_t window_examples() const { return window_; }

 protected:
  // `epoch_rows`: the examples of one epoch on this rank.
  WindowedBatches(const io::ExampleShardSchema& schema, StreamOptions options, int rank, int ranks,
                  int64_t epoch_rows);
  // For a source that counts its rows after construction: the epoch's examples and what follows
  // from them (windows and batches per epoch).
  void set_epoch_rows(int64_t rows);
  // Window `index` of `epoch`; valid until the next call. Called from one thread at a time.
  virtual const StreamWindow& window(int64_t epoch, int64_t index) = 0;
  // Sets w.order to the window's permutation (the identity without shuffle).
  void permute(StreamWindow& w) const;
  // Memory for a window, reusing `spare` when given.
  std::shared_ptr<ExampleRecords> window_memory(std::shared_ptr<ExampleRecords> spare, int64_t rows) const;

  const io::ExampleShardSchema schema_;
  const StreamOptions options_;
  const int rank_, ranks_;
  int64_t window_ = 0;
  // Read-only outside set_epoch_rows.
  int64_t epoch_rows_ = 0, windows_per_epoch_ = 0, batches_per_epoch_ = 0;

 private:
  std::vector<std::pair<Shape, DType>> signature_;
};

}  // namespace kiln::models
