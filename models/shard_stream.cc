#include "models/shard_stream.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/philox.h"

namespace kiln::models {

namespace {

// Philox streams of the stream's draws: one per (purpose, epoch, rank, window), distinct for any
// realistic counts (epochs < 2^24, ranks < 2^12, windows < 2^26).
uint64_t draw_stream(uint64_t purpose, int64_t epoch, int rank, int64_t window) {
  return (purpose << 62) ^ (static_cast<uint64_t>(epoch) << 38) ^ (static_cast<uint64_t>(rank) << 26) ^
         static_cast<uint64_t>(window);
}
constexpr uint64_t kBlockOrder = 1, kWindowOrder = 2;

}  // namespace

void check_shard_schema(const io::ExampleShardReader& shard, const io::ExampleShardSchema& expected) {
  if (shard.schema().state_fingerprint != expected.state_fingerprint)
    fail(shard.path(), " was transformed with another analysis (state fingerprint ", shard.schema().state_fingerprint,
         ", this run's transform state has ", expected.state_fingerprint,
         "): run kiln transform again with this state, or point data.csv.transform_state at the state the shards "
         "were made with");
  if (!(shard.schema() == expected)) fail(shard.path(), ": its columns differ from the transform state's model inputs");
}

ShardTable::ShardTable(const io::ExampleShardSchema& expected, const std::vector<std::string>& files, int rank,
                       int ranks, std::shared_ptr<io::ErrorBudget> budget)
    : paths_(files), schema_(expected), rank_(rank), budget_(std::move(budget)) {
  KILN_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "rank ", rank, " of ", ranks);
  // Every rank reads every footer, so all agree on the split without talking.
  std::vector<Block> all;
  readers_.resize(files.size());
  for (size_t f = 0; f < files.size(); ++f) {
    auto reader = std::make_unique<io::ExampleShardReader>(files[f]);
    check_shard_schema(*reader, schema_);
    file_rows_.push_back(reader->rows());
    for (int64_t b = 0; b < reader->blocks(); ++b) all.push_back({f, b, 0, reader->block_info(b).rows});
    readers_[f] = std::move(reader);
  }
  int64_t total = 0;
  for (const Block& b : all) total += b.rows();
  rows_.assign(static_cast<size_t>(ranks), 0);
  for (int r = 0; r < ranks; ++r) rows_[static_cast<size_t>(r)] = (r + 1) * total / ranks - r * total / ranks;
  const int64_t first = rank * total / ranks, last = (rank + 1) * total / ranks;
  std::vector<bool> used(files.size(), false);
  int64_t before = 0;  // rows of all blocks before b
  for (const Block& b : all) {
    const int64_t begin = std::max(first - before, int64_t{0}), end = std::min(last - before, b.rows());
    if (begin < end) {
      blocks_.push_back({b.file, b.index, begin, end});
      used[b.file] = true;
    }
    before += b.rows();
  }
  for (size_t f = 0; f < files.size(); ++f)
    if (!used[f]) readers_[f].reset();  // this rank never reads it
}

int64_t ShardTable::min_rank_rows() const { return *std::min_element(rows_.begin(), rows_.end()); }

int64_t ShardTable::total_rows() const { return std::accumulate(rows_.begin(), rows_.end(), int64_t{0}); }

size_t ShardTable::files_read() const {
  return static_cast<size_t>(std::count_if(readers_.begin(), readers_.end(), [](const auto& r) { return r != nullptr; }));
}

std::string ShardTable::layout() const {
  std::string s = str_cat("example shards (state ", schema_.state_fingerprint, "), ", ranks(), " rank",
                          ranks() == 1 ? "" : "s", ":");
  for (size_t f = 0; f < paths_.size(); ++f)
    s += str_cat(" ", std::filesystem::path(paths_[f]).filename().string(), "=", file_rows_[f]);
  return s;
}

std::optional<transform::ModelInputs> ShardTable::read(size_t b) const {
  const Block& block = blocks_[b];
  const io::ExampleShardReader& reader = *readers_[block.file];
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (corrupt_.count(b)) return std::nullopt;  // charged and reported the first time
  }
  std::optional<io::ExampleBlock> read;
  {
    // Charge the budget and warn once per block, however many epochs read it.
    std::lock_guard<std::mutex> lock(mutex_);
    read = reader.read_block_or_skip(block.index, *budget_);
    if (!read) {
      corrupt_.insert(b);
      std::fprintf(stderr, "kiln: warning: %s%s: %s: checksum mismatch (the file is corrupt); skipped its rows\n",
                   ranks() > 1 ? str_cat("rank ", rank_, ": ").c_str() : "", paths_[block.file].c_str(),
                   reader.block_name(block.index).c_str());
      return std::nullopt;
    }
  }
  transform::ModelInputs in;
  in.batch = read->rows;
  in.dense = std::move(read->dense);
  for (size_t f = 0; f < read->ids.size(); ++f)
    in.ids.push_back({schema_.ids_features[f], std::move(read->ids[f]), std::move(read->offsets[f]), 0});
  in.label = std::move(read->label);
  return in;
}

ShardBatches::ShardBatches(std::shared_ptr<const ShardTable> table, ShardStreamOptions options)
    : table_(std::move(table)), options_(options) {
  if (options_.batch_size < 1) fail("batch_size must be at least 1, got ", options_.batch_size);
  if (options_.shuffle_buffer < 1)
    fail("data.csv.shuffle_buffer must be at least 1 example, got ", options_.shuffle_buffer);
  const io::ExampleShardSchema& schema = table_->schema();
  signature_.emplace_back(Shape{schema.dense_width}, DType::f32);
  for (size_t c = 0; c < schema.ids_features.size(); ++c) {
    signature_.emplace_back(Shape{}, DType::i64);  // ids and offsets: TransformedSource::gather sizes them
    signature_.emplace_back(Shape{}, DType::i64);
  }
  signature_.emplace_back(Shape{}, schema.has_label ? schema.label_dtype : DType::f32);
  epoch_rows_ = options_.equal_steps ? table_->min_rank_rows() : table_->rows();
  if (options_.equal_steps && epoch_rows_ == 0)
    fail("the example shards hold ", table_->total_rows(), " rows in ", table_->files(), " files, too few for ",
         table_->ranks(), " ranks to get some each");
  // Whole batches per window, so no batch spans two windows.
  const int64_t b = options_.batch_size;
  window_ = std::max<int64_t>(1, (options_.shuffle_buffer + b - 1) / b) * b;
  windows_per_epoch_ = (epoch_rows_ + window_ - 1) / window_;
  batches_per_epoch_ = (epoch_rows_ + b - 1) / b;
}

ShardBatches::~ShardBatches() {
  if (ahead_.valid()) ahead_.wait();
}

ShardBatches::Window ShardBatches::load(int64_t epoch, int64_t index, std::shared_ptr<ExampleRecords> reuse) const {
  const std::vector<ShardTable::Block>& blocks = table_->blocks();
  std::vector<size_t> visit(blocks.size());
  std::iota(visit.begin(), visit.end(), size_t{0});
  if (options_.shuffle) {
    PhiloxGenerator gen(options_.seed, draw_stream(kBlockOrder, epoch, table_->rank(), 0));
    for (size_t i = visit.size(); i > 1; --i) std::swap(visit[i - 1], visit[gen.below(i)]);
  }
  Window w;
  w.epoch = epoch;
  w.index = index;
  const io::ExampleShardSchema& schema = table_->schema();
  w.examples = reuse ? std::move(reuse) : std::make_shared<ExampleRecords>(schema);
  w.examples->clear();
  const int64_t begin = index * window_, end = std::min(begin + window_, epoch_rows_);
  // One id per feature is the common case (a vocabulary or bucket); more grow the bytes as needed.
  w.examples->reserve(end - begin, schema.dense_width * 4 + static_cast<int64_t>(schema.ids_features.size()) * 12 + 4);
  int64_t at = 0;  // epoch position of the current block's first row
  for (size_t v = 0; v < visit.size() && at < end; ++v) {
    const ShardTable::Block& block = blocks[visit[v]];
    const int64_t rows = block.rows();
    if (at + rows > begin) {
      std::optional<transform::ModelInputs> in = table_->read(visit[v]);
      if (in)
        w.examples->append(*in, block.begin + std::max<int64_t>(begin - at, 0),
                           block.begin + std::min<int64_t>(end - at, rows));
    }
    at += rows;
  }
  // A corrupt block skipped within the budget leaves the window short: its last batches are too.
  w.order.resize(static_cast<size_t>(w.examples->size()));
  std::iota(w.order.begin(), w.order.end(), int64_t{0});
  if (options_.shuffle) {
    PhiloxGenerator gen(options_.seed, draw_stream(kWindowOrder, epoch, table_->rank(), index));
    for (size_t i = w.order.size(); i > 1; --i) std::swap(w.order[i - 1], w.order[gen.below(i)]);
  }
  return w;
}

void ShardBatches::read_ahead(int64_t epoch, int64_t index) {
  if (++index == windows_per_epoch_) {
    index = 0;
    ++epoch;
  }
  if (ahead_.valid() && ahead_epoch_ == epoch && ahead_index_ == index) return;
  if (ahead_.valid()) ahead_.wait();  // a seek: its result is not wanted
  ahead_epoch_ = epoch;
  ahead_index_ = index;
  ahead_ = std::async(std::launch::async,
                      [this, epoch, index, reuse = std::move(spare_)] { return load(epoch, index, reuse); });
}

const ShardBatches::Window& ShardBatches::window(int64_t epoch, int64_t index) {
  if (current_.epoch != epoch || current_.index != index) {
    // The old window's memory goes to the next read (batches handed out hold copies).
    if (current_.examples) spare_ = std::move(current_.examples);
    current_ = Window{};
    if (ahead_.valid() && ahead_epoch_ == epoch && ahead_index_ == index) {
      ahead_epoch_ = ahead_index_ = -1;
      current_ = ahead_.get();  // rethrows what the background read threw
    } else {
      current_ = load(epoch, index, std::move(spare_));
    }
  }
  read_ahead(epoch, index);
  return current_;
}

io::Batch ShardBatches::make_batch(int64_t epoch, int64_t index) {
  KILN_CHECK(index >= 0 && index < batches_per_epoch_, "batch ", index, " of ", batches_per_epoch_);
  const int64_t first = index * options_.batch_size;
  const int64_t nominal = std::min(options_.batch_size, epoch_rows_ - first);
  const Window& w = window(epoch, first / window_);
  const int64_t n = static_cast<int64_t>(w.order.size());
  const int64_t lo = std::min(first - w.index * window_, n), hi = std::min(lo + nominal, n);
  io::Batch batch;
  batch.epoch = epoch;
  batch.index = index;
  batch.size = hi - lo;
  // Every rank's batch has the same nominal size in training: the global batch is ranks times it.
  batch.global_size = options_.equal_steps ? nominal * table_->ranks() : batch.size;
  batch.global_offset = options_.equal_steps ? nominal * table_->rank() : 0;
  for (const auto& [shape, dtype] : signature_) batch.tensors.push_back(Tensor::empty(shape.with_batch(batch.size), dtype));
  if (batch.size > 0) w.examples->gather(w.order.data() + lo, batch.size, batch.tensors);
  return batch;
}

}  // namespace kiln::models
