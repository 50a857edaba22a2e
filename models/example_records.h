#pragma once
// A window of streamed examples (models/shard_stream.h), packed one record per example so that
// drawing examples in shuffled order touches a few adjacent cache lines per example instead of
// one per column (a flights example: 18 scattered lines as columns, 3 as a record). The batch
// tensors gather() writes are TransformedSource's: dense f32 [b, D]; per ids feature its ids i64
// [nnz] and offsets i64 [b + 1]; the label.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "io/example_shard.h"
#include "transform/transformer.h"

namespace kiln::models {

class ExampleRecords {
 public:
  explicit ExampleRecords(const io::ExampleShardSchema& schema);
  // Empties it, keeping the memory for the next window.
  void clear() {
    used_ = 0;
    starts_.clear();
  }
  // Room for `rows` examples of `bytes_per_row` bytes, so appends do not reallocate.
  void reserve(int64_t rows, int64_t bytes_per_row);
  // Appends rows [begin, end) of a block (ids offsets starting at 0, as the shard reader gives).
  void append(const transform::ModelInputs& part, int64_t begin, int64_t end);
  int64_t size() const { return static_cast<int64_t>(starts_.size()); }
  // out holds one tensor per batch column; dense and label preallocated for `count` examples, ids
  // and offsets replaced here (their length depends on the examples).
  void gather(const int64_t* indices, int64_t count, std::vector<Tensor>& out) const;

 private:
  // Record: dense f32[width], then per ids feature an i32 count and that many i64 ids, then the
  // label (f32 or i32). Unaligned: read and written with memcpy.
  int64_t width_ = 0;
  size_t features_ = 0;
  bool has_label_ = true;
  // Grown by hand: a std::vector<char> would zero every byte it is about to overwrite.
  std::unique_ptr<char[]> bytes_;
  size_t used_ = 0, capacity_ = 0;
  void grow(size_t bytes);
  std::vector<int64_t> starts_;  // each record's first byte
};

}  // namespace kiln::models
