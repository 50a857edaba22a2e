#include "models/windowed_batches.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/philox.h"

namespace kiln::models {

uint64_t stream_draw(uint64_t purpose, int64_t epoch, int rank, int64_t window) {
  return (purpose << 62) ^ (static_cast<uint64_t>(epoch) << 38) ^ (static_cast<uint64_t>(rank) << 26) ^
         static_cast<uint64_t>(window);
}

WindowedBatches::WindowedBatches(const io::ExampleShardSchema& schema, StreamOptions options, int rank, int ranks,
                                 int64_t epoch_rows)
    : schema_(schema), options_(options), rank_(rank), ranks_(ranks) {
  if (options_.batch_size < 1) fail("batch_size must be at least 1, got ", options_.batch_size);
  if (options_.shuffle_buffer < 1)
    fail("data.csv.shuffle_buffer must be at least 1 example, got ", options_.shuffle_buffer);
  signature_.emplace_back(Shape{schema.dense_width}, DType::f32);
  for (size_t c = 0; c < schema.ids_features.size(); ++c) {
    signature_.emplace_back(Shape{}, DType::i64);  // ids and offsets: ExampleRecords::gather sizes them
    signature_.emplace_back(Shape{}, DType::i64);
  }
  signature_.emplace_back(Shape{}, schema.has_label ? schema.label_dtype : DType::f32);
  // Whole batches per window, so no batch spans two windows.
  const int64_t b = options_.batch_size;
  window_ = std::max<int64_t>(1, (options_.shuffle_buffer + b - 1) / b) * b;
  set_epoch_rows(epoch_rows);
}

void WindowedBatches::set_epoch_rows(int64_t rows) {
  epoch_rows_ = rows;
  windows_per_epoch_ = (epoch_rows_ + window_ - 1) / window_;
  batches_per_epoch_ = (epoch_rows_ + options_.batch_size - 1) / options_.batch_size;
}

void WindowedBatches::permute(StreamWindow& w) const {
  w.order.resize(static_cast<size_t>(w.examples->size()));
  std::iota(w.order.begin(), w.order.end(), int64_t{0});
  if (!options_.shuffle) return;
  PhiloxGenerator gen(options_.seed, stream_draw(kWindowOrderDraw, w.epoch, rank_, w.index));
  gen.shuffle(w.order);
}

std::shared_ptr<ExampleRecords> WindowedBatches::window_memory(std::shared_ptr<ExampleRecords> spare,
                                                               int64_t rows) const {
  auto records = spare ? std::move(spare) : std::make_shared<ExampleRecords>(schema_);
  records->clear();
  // One id per feature is the common case (a vocabulary or bucket); more grow the bytes as needed.
  records->reserve(rows, schema_.dense_width * 4 + static_cast<int64_t>(schema_.ids_features.size()) * 12 + 4);
  return records;
}

io::Batch WindowedBatches::make_batch(int64_t epoch, int64_t index) {
  KILN_CHECK(index >= 0 && index < batches_per_epoch_, "batch ", index, " of ", batches_per_epoch_);
  const int64_t first = index * options_.batch_size;
  const int64_t nominal = std::min(options_.batch_size, epoch_rows_ - first);
  const StreamWindow& w = window(epoch, first / window_);
  // A window short of rows (a corrupt block skipped within the error budget) gives short batches.
  const int64_t n = static_cast<int64_t>(w.order.size());
  const int64_t lo = std::min(first - w.index * window_, n), hi = std::min(lo + nominal, n);
  io::Batch batch;
  batch.epoch = epoch;
  batch.index = index;
  batch.size = hi - lo;
  // Every rank's batch has the same nominal size in training: the global batch is ranks times it.
  batch.global_size = options_.equal_steps ? nominal * ranks_ : batch.size;
  batch.global_offset = options_.equal_steps ? nominal * rank_ : 0;
  for (const auto& [shape, dtype] : signature_) batch.tensors.push_back(Tensor::empty(shape.with_batch(batch.size), dtype));
  if (batch.size > 0) w.examples->gather(w.order.data() + lo, batch.size, batch.tensors);
  return batch;
}

}  // namespace kiln::models
