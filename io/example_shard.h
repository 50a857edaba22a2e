#pragma once
// Kiln example shards (.kex): transformed examples in blocks, column-major per input, so a block
// is read with one read and no parsing. Written by `kiln transform`, read by training. The format
// (version 1) is documented in docs/example_shards.md, with a numpy reader:
//
//   "KILNEX01"                                         8 bytes
//   block 0, block 1, ...                              each: its columns in schema order, every
//                                                      column padded with zeros to 8 bytes
//   footer                                             UTF-8 JSON: schema, rows, the
//                                                      TransformState fingerprint, the blocks'
//                                                      offsets, sizes, element counts and CRC32C
//   footer length                                      u64 little-endian
//   "KILNEX01"                                         8 bytes
//
// Columns of a block with R rows: "dense" f32 [R, width]; for each ids feature F, "F.lengths" i32
// [R] (ids per example) then "F.ids" i64 [sum of lengths]; "label" f32 or i32 [R] (absent when
// the schema has no label). A file without its closing magic is incomplete (a killed writer) and
// is refused whole; each block's CRC32C is checked when it is read, and a corrupt block is an
// error or, within an error budget, skipped with its rows counted as bad.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "io/atomic_file.h"

namespace kiln::io {

class ErrorBudget;

inline constexpr char kExampleShardMagic[8] = {'K', 'I', 'L', 'N', 'E', 'X', '0', '1'};
inline constexpr int kExampleShardVersion = 1;
// The error-budget category of the rows of skipped corrupt blocks.
inline constexpr char kCorruptBlockRows[] = "row in a corrupt block";

struct ExampleShardSchema {
  int64_t dense_width = 0;
  std::vector<std::string> ids_features;  // in model-input order
  bool has_label = true;
  DType label_dtype = DType::f32;  // f32 (regression, binary) or i32 (multiclass)
  // Identifies the analysis the examples were transformed with (transform/state_fingerprint.h);
  // readers refuse shards whose fingerprint differs from theirs.
  std::string state_fingerprint;
  bool operator==(const ExampleShardSchema&) const = default;
};

// One block of examples, as model inputs: dense f32 [rows, width]; per ids feature, ids i64
// [nnz] and CSR offsets i64 [rows + 1] starting at 0; label [rows] (undefined without a label).
struct ExampleBlock {
  int64_t rows = 0;
  Tensor dense;
  std::vector<Tensor> ids, offsets;
  Tensor label;
};

struct ExampleShardBlockInfo {
  uint64_t offset = 0, bytes = 0;
  int64_t rows = 0;
  uint32_t crc32c = 0;
  std::vector<int64_t> counts;  // elements per column, in the footer's column order
};

// Writes one shard; `path` appears only at commit() (temporary file, fsync, rename), so a killed
// writer leaves no file that looks whole.
class ExampleShardWriter {
 public:
  ExampleShardWriter(const std::string& path, ExampleShardSchema schema);
  ~ExampleShardWriter();
  ExampleShardWriter(const ExampleShardWriter&) = delete;
  ExampleShardWriter& operator=(const ExampleShardWriter&) = delete;

  // Appends a block (empty blocks are skipped); its shapes must match the schema.
  void append(const ExampleBlock& block);
  uint64_t bytes_written() const;
  int64_t rows() const { return rows_; }
  void commit();

 private:
  std::unique_ptr<AtomicFileWriter> file_;  // null once committed
  ExampleShardSchema schema_;
  std::vector<ExampleShardBlockInfo> blocks_;
  int64_t rows_ = 0;
};

// Reads a shard's footer at open; blocks on demand. Errors name the file (and the block).
class ExampleShardReader {
 public:
  explicit ExampleShardReader(const std::string& path);
  ~ExampleShardReader();
  ExampleShardReader(const ExampleShardReader&) = delete;
  ExampleShardReader& operator=(const ExampleShardReader&) = delete;

  const std::string& path() const { return path_; }
  const ExampleShardSchema& schema() const { return schema_; }
  int64_t rows() const { return rows_; }
  int64_t blocks() const { return static_cast<int64_t>(blocks_.size()); }
  const ExampleShardBlockInfo& block_info(int64_t i) const { return blocks_[static_cast<size_t>(i)]; }
  // Reads block i and checks its CRC32C; a mismatch is kiln::Error naming the file and block.
  ExampleBlock read_block(int64_t i) const;
  // As read_block, but a checksum mismatch is charged to `budget` (all the block's rows, under
  // kCorruptBlockRows) and gives nullopt: the caller skips the block. Past the budget it is the
  // budget's error, naming the file, the block and csv.max_bad_rows. Only the checksum is
  // forgiven: a block that matches its checksum but not its footer entry means the footer is
  // wrong, and the shard cannot be trusted at all.
  std::optional<ExampleBlock> read_block_or_skip(int64_t i, ErrorBudget& budget) const;
  // "block I (bytes A..B, R rows)", for messages.
  std::string block_name(int64_t i) const;

 private:
  // Reads block i's bytes; nullopt when they do not match the block's checksum.
  std::optional<std::string> read_checked(int64_t i) const;
  ExampleBlock decode(int64_t i, const std::string& bytes) const;

  std::string path_;
  int fd_ = -1;
  ExampleShardSchema schema_;
  std::vector<ExampleShardBlockInfo> blocks_;
  int64_t rows_ = 0;
};

// The column names and numpy dtypes of a schema, in file order ("dense" "<f4", "F.lengths" "<i4",
// "F.ids" "<i8", "label" "<f4" or "<i4").
std::vector<std::pair<std::string, std::string>> example_shard_columns(const ExampleShardSchema& schema);

}  // namespace kiln::io
