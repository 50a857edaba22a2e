#pragma once
// Example shards streamed from disk (docs/data.md, "Streaming"): memory holds one window of
// examples (the shuffle buffer) and the next window being read, whatever the data's size; under
// mpirun each rank reads only its own blocks.
//
// Order. Each rank owns a fixed, contiguous run of the shards' rows (an equal share, whatever the
// shards' sizes). Every epoch a rank visits its blocks in an order drawn from (seed, epoch,
// rank), and the examples of each window of shuffle_buffer consecutive examples are permuted by
// (seed, epoch, rank, window) — the quasi-random order of FFCV, or tf.data's shard shuffle plus a
// shuffle buffer, but positioned by arithmetic: batch i of epoch e is a pure function of (e, i).
// Resuming needs only that position (kept in every checkpoint), so a kill -9 resumes at the same
// example after reading one window.
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "io/error_budget.h"
#include "io/example_shard.h"
#include "models/windowed_batches.h"
#include "transform/transformer.h"

namespace kiln::models {

// Fails, naming the shard, when it was not transformed with the analysis `expected` comes from
// (transform::example_shard_schema of the run's state) or holds other columns.
void check_shard_schema(const io::ExampleShardReader& shard, const io::ExampleShardSchema& expected);

// A block read from a shard as the model inputs the Transformer would have made of its rows.
transform::ModelInputs block_model_inputs(io::ExampleBlock block, const io::ExampleShardSchema& schema);

// The blocks of a set of example shards that one rank reads.
class ShardTable {
 public:
  // A block, or the part of it a rank owns: rows [begin, end) of block `index` of file `file`.
  struct Block {
    size_t file = 0;
    int64_t index = 0;
    int64_t begin = 0, end = 0;
    int64_t rows() const { return end - begin; }
  };
  // Reads every shard's footer (no blocks): a shard of another analysis (fingerprint), with
  // other columns than `expected` (transform::example_shard_schema of the run's state), or
  // incomplete is a kiln::Error naming it. Rank r of R owns rows [r*T/R, (r+1)*T/R) of the T
  // rows of all shards in file order (a block on a boundary is read by both ranks, each taking its
  // part), and keeps open only the files holding them. A corrupt block is charged to `budget` once (csv.max_bad_rows) and then
  // skipped with a warning naming the file and block; past the budget it is the budget's error.
  ShardTable(const io::ExampleShardSchema& expected, const std::vector<std::string>& files, int rank, int ranks,
             std::shared_ptr<io::ErrorBudget> budget);

  const std::vector<Block>& blocks() const { return blocks_; }  // this rank's, in file order
  int64_t rows() const { return rows_[static_cast<size_t>(rank_)]; }
  int64_t min_rank_rows() const;  // the fewest rows any rank has
  int64_t total_rows() const;
  const io::ExampleShardSchema& schema() const { return schema_; }
  int rank() const { return rank_; }
  int ranks() const { return static_cast<int>(rows_.size()); }
  size_t files_read() const;  // files holding this rank's blocks
  size_t files() const { return paths_.size(); }
  // What identifies this input in a checkpoint: the shards, their rows and the split.
  std::string layout() const;
  // The whole block of blocks()[b] as model inputs; nullopt for a corrupt block within the budget.
  std::optional<transform::ModelInputs> read(size_t b) const;

 private:
  std::vector<std::string> paths_;
  std::vector<std::unique_ptr<io::ExampleShardReader>> readers_;  // null for files this rank skips
  io::ExampleShardSchema schema_;
  std::vector<Block> blocks_;
  std::vector<int64_t> rows_;  // per rank
  std::vector<int64_t> file_rows_;
  int rank_ = 0;
  std::shared_ptr<io::ErrorBudget> budget_;
  mutable std::mutex mutex_;
  mutable std::set<size_t> corrupt_;  // blocks already charged and warned about
};

// Windows of example shards: each epoch this rank's blocks in an order drawn from (seed, epoch,
// rank); the next window read on a background thread while batches come from the current one.
class ShardBatches final : public WindowedBatches {
 public:
  ShardBatches(std::shared_ptr<const ShardTable> table, StreamOptions options);
  ~ShardBatches() override;  // waits for a window being read

 private:
  const StreamWindow& window(int64_t epoch, int64_t index) override;
  // Reads a window from disk into `spare` (a window no longer wanted) or new memory; any thread.
  StreamWindow load(int64_t epoch, int64_t index, std::shared_ptr<ExampleRecords> spare) const;
  void read_ahead(int64_t epoch, int64_t index);

  std::shared_ptr<const ShardTable> table_;
  StreamWindow current_;
  std::shared_ptr<ExampleRecords> spare_;  // the previous window's memory, for the next read
  int64_t ahead_epoch_ = -1, ahead_index_ = -1;
  std::future<StreamWindow> ahead_;  // the next window, read in the background
};

}  // namespace kiln::models
