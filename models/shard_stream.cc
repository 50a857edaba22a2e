#include "models/shard_stream.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/philox.h"

namespace kiln::models {

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
  std::optional<io::ExampleBlock> read;
  {
    // Charge the budget and warn once per block, however many epochs read it.
    std::lock_guard<std::mutex> lock(mutex_);
    if (corrupt_.count(b)) return std::nullopt;
    read = reader.read_block_or_skip(block.index, *budget_);
    if (!read) {
      corrupt_.insert(b);
      std::fprintf(stderr, "kiln: warning: %s%s: %s: checksum mismatch (the file is corrupt); skipped its rows\n",
                   ranks() > 1 ? str_cat("rank ", rank_, ": ").c_str() : "", paths_[block.file].c_str(),
                   reader.block_name(block.index).c_str());
      return std::nullopt;
    }
  }
  return block_model_inputs(std::move(*read), schema_);
}

transform::ModelInputs block_model_inputs(io::ExampleBlock block, const io::ExampleShardSchema& schema) {
  transform::ModelInputs in;
  in.batch = block.rows;
  in.dense = std::move(block.dense);
  for (size_t f = 0; f < block.ids.size(); ++f)
    in.ids.push_back({schema.ids_features[f], std::move(block.ids[f]), std::move(block.offsets[f]), 0});
  in.label = std::move(block.label);
  return in;
}

namespace {

int64_t epoch_rows(const ShardTable& table, const StreamOptions& options) {
  const int64_t rows = options.equal_steps ? table.min_rank_rows() : table.rows();
  if (options.equal_steps && rows == 0)
    fail("the example shards hold ", table.total_rows(), " rows in ", table.files(), " files, too few for ",
         table.ranks(), " ranks to get some each");
  return rows;
}

}  // namespace

ShardBatches::ShardBatches(std::shared_ptr<const ShardTable> table, StreamOptions options)
    : WindowedBatches(table->schema(), options, table->rank(), table->ranks(), epoch_rows(*table, options)),
      table_(std::move(table)) {}

ShardBatches::~ShardBatches() {
  if (ahead_.valid()) ahead_.wait();
}

StreamWindow ShardBatches::load(int64_t epoch, int64_t index, std::shared_ptr<ExampleRecords> spare) const {
  const std::vector<ShardTable::Block>& blocks = table_->blocks();
  std::vector<size_t> visit(blocks.size());
  std::iota(visit.begin(), visit.end(), size_t{0});
  if (options_.shuffle) {
    PhiloxGenerator gen(options_.seed, stream_draw(kSourceOrderDraw, epoch, rank_, 0));
    gen.shuffle(visit);
  }
  const int64_t begin = index * window_, end = std::min(begin + window_, epoch_rows_);
  StreamWindow w;
  w.epoch = epoch;
  w.index = index;
  w.examples = window_memory(std::move(spare), end - begin);
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
  permute(w);
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
                      [this, epoch, index, spare = std::move(spare_)] { return load(epoch, index, spare); });
}

const StreamWindow& ShardBatches::window(int64_t epoch, int64_t index) {
  if (current_.epoch != epoch || current_.index != index) {
    // The old window's memory goes to the next read (batches handed out hold copies).
    if (current_.examples) spare_ = std::move(current_.examples);
    current_ = StreamWindow{};
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

}  // namespace kiln::models
