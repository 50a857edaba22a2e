#pragma once
// Transformed tabular examples held in memory for the input pipeline: the dense matrix, the ids
// of each embedding feature in CSR form, and the labels. Batch tensors, in order: dense f32
// [b, D]; for each embedding feature its ids i64 [nnz] and offsets i64 [b + 1]; the label.
// (The ids and offsets placeholders the pipeline preallocates are replaced by gather(), since
// their length depends on the examples drawn.)
#include <memory>
#include <vector>

#include "io/csv_reader.h"
#include "io/error_budget.h"
#include "io/input_pipeline.h"
#include "transform/transformer.h"

namespace kiln::models {

class TransformedSource final : public io::ExampleSource {
 public:
  // Concatenates the parts in order.
  explicit TransformedSource(const std::vector<transform::ModelInputs>& parts);
  int64_t size() const override { return rows_; }
  std::vector<std::pair<Shape, DType>> signature() const override;
  void gather(const int64_t* indices, int64_t count, std::vector<Tensor>& out) const override;
  int ids_columns() const { return static_cast<int>(ids_.size()); }

 private:
  int64_t rows_ = 0, width_ = 0;
  std::vector<float> dense_;
  struct Csr {
    std::vector<int64_t> ids, offsets;
  };
  std::vector<Csr> ids_;
  DType label_dtype_ = DType::f32;
  std::vector<float> label_f_;
  std::vector<int32_t> label_i_;
};

// Reads CSV files through the Transformer: chunks are parsed and transformed in parallel and
// concatenated in file order, so the examples are the same for any thread count.
std::shared_ptr<TransformedSource> transform_csv_files(const TransformState& state,
                                                       const std::vector<std::string>& files,
                                                       const io::CsvOptions& options,
                                                       const std::shared_ptr<io::ErrorBudget>& budget);

// Reads example shards (io/example_shard.h, written by kiln transform) into memory; every shard's
// state fingerprint and schema must be `state`'s, else kiln::Error naming the shard. A corrupt
// block is charged to `budget` (csv.max_bad_rows, like malformed CSV rows) and skipped with a
// warning naming the file, block and byte range; past the budget it is the budget's error.
std::shared_ptr<TransformedSource> read_example_shards(const TransformState& state,
                                                       const std::vector<std::string>& files,
                                                       io::ErrorBudget& budget);

}  // namespace kiln::models
