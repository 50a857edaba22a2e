#include "models/csv_stream.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>

#include "core/error.h"
#include "core/philox.h"
#include "transform/csv_rows.h"
#include "transform/example_shard_writing.h"
#include "transform/transformer.h"

namespace kiln::models {

namespace {

// This rank's files: r, r + R, ... of the list.
std::vector<std::string> rank_files(const std::vector<std::string>& files, int rank, int ranks) {
  if (files.size() < static_cast<size_t>(ranks))
    fail("data.csv.train_files: ", files.size(), " CSV file", files.size() == 1 ? "" : "s", " cannot be streamed by ",
         ranks, " ranks (each reads its own files): split the data into at least ", ranks,
         " files, or transform it into example shards (kiln transform), which ranks split by rows");
  std::vector<std::string> mine;
  for (size_t f = static_cast<size_t>(rank); f < files.size(); f += static_cast<size_t>(ranks)) mine.push_back(files[f]);
  return mine;
}

// The rows the Transformer keeps from `files`; bad rows are charged to `budget` (once, here).
int64_t count_rows(const CsvStreamSource& source, const std::vector<std::string>& files) {
  io::CsvReader reader(files, source.options, source.budget);
  transform::Transformer bound(source.state, reader.column_names(), true);
  std::mutex mutex;
  int64_t rows = 0;
  reader.for_each_chunk([&](const io::CsvChunk& chunk) {
    const int64_t n = bound.apply(transform::CsvRows(chunk), source.budget.get()).batch;
    std::lock_guard<std::mutex> lock(mutex);
    rows += n;
  });
  return rows;
}

}  // namespace

CsvBatches::CsvBatches(std::shared_ptr<const CsvStreamSource> source, StreamOptions options, Communicator& comm)
    : WindowedBatches(transform::example_shard_schema(source->state), options, comm.rank(), comm.size(), 0),
      source_(std::move(source)) {
  mine_ = rank_files(source_->files, rank_, ranks_);
  const auto start = std::chrono::steady_clock::now();
  if (rank_ == 0)
    std::fprintf(stderr, "training data: counting the rows of %zu CSV files (one pass before streaming them)\n",
                 source_->files.size());
  std::vector<int64_t> rows(static_cast<size_t>(ranks_), 0);
  rows[static_cast<size_t>(rank_)] = count_rows(*source_, mine_);
  comm.all_reduce_sum(rows.data(), static_cast<int64_t>(rows.size()));
  total_rows_ = std::accumulate(rows.begin(), rows.end(), int64_t{0});
  set_epoch_rows(options_.equal_steps ? *std::min_element(rows.begin(), rows.end()) : rows[static_cast<size_t>(rank_)]);
  if (epoch_rows_ == 0) fail("data.csv.train_files: no usable rows", ranks_ > 1 ? " on some rank" : "");
  if (rank_ == 0)
    std::fprintf(stderr, "training data: %lld rows counted in %.1f s\n", static_cast<long long>(total_rows_),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

CsvBatches::~CsvBatches() { stop(); }

std::string CsvBatches::layout() const {
  std::string s = str_cat("CSV (state ", schema_.state_fingerprint, "), ", ranks_, " rank", ranks_ == 1 ? "" : "s", ":");
  for (const std::string& f : source_->files)
    s += str_cat(" ", std::filesystem::path(f).filename().string(), "=", std::filesystem::file_size(f), "B");
  return s;
}

void CsvBatches::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_ = true;
  }
  ready_changed_.notify_all();
  if (reader_.joinable()) reader_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  ready_.clear();
  error_ = nullptr;
  cancel_ = reader_done_ = false;
  reader_epoch_ = next_take_ = -1;
}

void CsvBatches::start(int64_t epoch, int64_t first_window) {
  reader_epoch_ = epoch;
  next_take_ = first_window;
  reader_ = std::thread([this, epoch, first_window] { read_epoch(epoch, first_window); });
}

std::shared_ptr<ExampleRecords> CsvBatches::take_spare(int64_t rows) {
  std::shared_ptr<ExampleRecords> spare;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    spare = std::move(spare_);
  }
  return window_memory(std::move(spare), rows);
}

void CsvBatches::read_epoch(int64_t epoch, int64_t first_window) {
  try {
    std::vector<std::string> files = mine_;
    if (options_.shuffle) {
      PhiloxGenerator gen(options_.seed, stream_draw(kSourceOrderDraw, epoch, rank_, 0));
      gen.shuffle(files);
    }
    // The counting pass charged and reported the bad rows; here they are only left out again.
    auto budget = std::make_shared<io::ErrorBudget>(-1);
    io::CsvReader reader(files, source_->options, budget);
    transform::Transformer bound(source_->state, reader.column_names(), true);
    std::mutex order;  // chunks arrive from several parse threads: consumed in file order
    std::map<int64_t, transform::ModelInputs> pending;
    int64_t next_chunk = 0, produced = 0, index = 0;
    std::shared_ptr<ExampleRecords> records = take_spare(window_);
    auto consume = [&](const transform::ModelInputs& in) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (cancel_) throw Stop{};
      }
      for (int64_t r = 0; r < in.batch && produced < epoch_rows_;) {
        const int64_t window_end = std::min((index + 1) * window_, epoch_rows_);
        const int64_t n = std::min(in.batch - r, window_end - produced);
        if (index >= first_window) records->append(in, r, r + n);  // earlier windows: a resume skips them
        r += n;
        produced += n;
        if (produced < window_end) continue;
        if (index >= first_window) {
          StreamWindow w;
          w.epoch = epoch;
          w.index = index;
          w.examples = records;  // `records` stays valid for a parse thread still to come here
          permute(w);
          std::unique_lock<std::mutex> lock(mutex_);
          ready_changed_.wait(lock, [this] { return cancel_ || ready_.empty(); });
          if (cancel_) throw Stop{};
          ready_.push_back(std::move(w));
          lock.unlock();
          ready_changed_.notify_all();
          records = take_spare(window_);
        }
        ++index;
      }
      if (produced == epoch_rows_) throw Stop{};  // the rest of the files is not needed this epoch
    };
    try {
      reader.for_each_chunk([&](const io::CsvChunk& chunk) {
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (cancel_) throw Stop{};
        }
        transform::ModelInputs in = bound.apply(transform::CsvRows(chunk), budget.get());
        std::lock_guard<std::mutex> lock(order);
        pending.emplace(chunk.index(), std::move(in));
        for (auto it = pending.find(next_chunk); it != pending.end(); it = pending.find(++next_chunk)) {
          consume(it->second);
          pending.erase(it);
        }
      });
    } catch (const Stop&) {
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (!cancel_ && produced < epoch_rows_)
      error_ = std::make_exception_ptr(Error(str_cat("data.csv.train_files: epoch ", epoch, " found ", produced,
                                                     " rows, the counting pass ", epoch_rows_,
                                                     ": did the files change during training?")));
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reader_done_ = true;
  }
  ready_changed_.notify_all();
}

const StreamWindow& CsvBatches::window(int64_t epoch, int64_t index) {
  if (current_.epoch == epoch && current_.index == index) return current_;
  bool restart;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The old window's memory goes back to the reader (batches handed out hold copies).
    if (current_.examples) spare_ = std::move(current_.examples);
    current_ = StreamWindow{};
    restart = reader_epoch_ != epoch || next_take_ != index;
  }
  if (restart) {
    stop();
    start(epoch, index);
  }
  std::unique_lock<std::mutex> lock(mutex_);
  ready_changed_.wait(lock, [this] { return !ready_.empty() || reader_done_; });
  if (ready_.empty()) {
    std::exception_ptr error = error_;
    lock.unlock();
    stop();  // a retry starts the epoch's reader again
    if (error) std::rethrow_exception(error);
    fail("data.csv.train_files: the CSV reader ended before window ", index, " of epoch ", epoch);
  }
  current_ = std::move(ready_.front());
  ready_.pop_front();
  const bool epoch_read = ++next_take_ == windows_per_epoch_;
  lock.unlock();
  ready_changed_.notify_all();
  if (epoch_read) {
    // The next epoch (its own file order) is read while this window is used.
    stop();
    start(epoch + 1, 0);
  }
  return current_;
}

}  // namespace kiln::models
