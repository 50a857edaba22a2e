#pragma once
// CSV training data streamed through the Transformer (docs/data.md, "Streaming CSV"): data larger
// than memory without a `kiln transform` first. Each epoch a background thread parses this rank's
// files (in an order drawn from seed and epoch; the parser's threads in parallel, results in file
// order), transforms the rows and cuts them into windows of shuffle_buffer examples; memory holds
// three windows (being built, ready, in use) and a few CSV chunks, whatever the data's size.
//
// One pass at start counts the rows the Transformer keeps (and reports bad rows once, against the
// error budget), so every epoch has a known number of steps. Under mpirun rank r reads files r,
// r + R, ...; every rank runs the steps of the rank with the fewest rows. A batch is a pure
// function of (epoch, batch index), as for shards; resuming mid-epoch parses the epoch's rows
// before the position again (no training on them), which costs up to one epoch of parsing.
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/communicator.h"
#include "io/csv_reader.h"
#include "io/error_budget.h"
#include "models/windowed_batches.h"
#include "proto/transform_state.pb.h"

namespace kiln::models {

struct CsvStreamSource {
  TransformState state;
  std::vector<std::string> files;  // all ranks'
  io::CsvOptions options;
  std::shared_ptr<io::ErrorBudget> budget;  // charged by the counting pass
};

class CsvBatches final : public WindowedBatches {
 public:
  // Counts this rank's rows (the parse threads of source.options); `comm` shares the counts.
  CsvBatches(std::shared_ptr<const CsvStreamSource> source, StreamOptions options, Communicator& comm);
  ~CsvBatches() override;  // stops the reader

  int64_t total_rows() const { return total_rows_; }
  size_t files() const { return source_->files.size(); }
  // What identifies this input in a checkpoint: the files, their sizes and the split.
  std::string layout() const;

 private:
  struct Stop {};  // ends a reader early: cancelled, or the epoch's rows are all read
  const StreamWindow& window(int64_t epoch, int64_t index) override;
  void start(int64_t epoch, int64_t first_window);
  void stop();
  void read_epoch(int64_t epoch, int64_t first_window);  // the reader thread
  std::shared_ptr<ExampleRecords> take_spare(int64_t rows);

  std::shared_ptr<const CsvStreamSource> source_;
  std::vector<std::string> mine_;  // this rank's files
  int64_t total_rows_ = 0;

  std::mutex mutex_;
  std::condition_variable ready_changed_;  // a window became ready, the reader ended, or cancel
  std::deque<StreamWindow> ready_;         // at most one, waiting for the consumer
  std::shared_ptr<ExampleRecords> spare_;  // the consumer's last window, for the reader to reuse
  std::exception_ptr error_;
  bool cancel_ = false, reader_done_ = false;
  int64_t reader_epoch_ = -1, next_take_ = -1;  // the window the consumer takes next from the reader
  std::thread reader_;
  StreamWindow current_;
};

}  // namespace kiln::models
