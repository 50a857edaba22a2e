#pragma once
// A CSV chunk seen as RawRows: the bridge from io::CsvReader to the Transformer and analyzers.
#include <vector>

#include "io/csv_reader.h"
#include "proto/feature_spec.pb.h"
#include "transform/raw_rows.h"

namespace kiln::transform {

class CsvRows final : public RawRows {
 public:
  explicit CsvRows(const io::CsvChunk& chunk) : chunk_(chunk) {}
  int64_t rows() const override { return chunk_.rows(); }
  std::string_view field(int64_t row, int col) const override { return chunk_.field(row, col); }
  bool is_na(int64_t row, int col) const override { return chunk_.is_na(row, col); }
  std::string where(int64_t row, int col) const override;
  void column(int col, int64_t begin, int64_t end, std::string_view* values, uint8_t* na) const override {
    chunk_.column(col, begin, end, values, na);
  }
  void parse_numbers(const std::string_view* values, size_t n, double* out, uint8_t* ok) const override {
    chunk_.parse_numbers(values, n, out, ok);
  }

 private:
  const io::CsvChunk& chunk_;
};

// Some rows of a CSV chunk with the columns in another order: column c reads CSV column map[c]
// (-1: a column the file lacks, read as missing). Export and `kiln predict` bind a file's
// columns to a servable's this way.
class BoundCsvRows final : public RawRows {
 public:
  BoundCsvRows(const io::CsvChunk& chunk, const std::vector<int>& map, std::vector<int64_t> rows)
      : chunk_(chunk), map_(map), rows_(std::move(rows)) {}
  int64_t rows() const override { return static_cast<int64_t>(rows_.size()); }
  std::string_view field(int64_t row, int col) const override {
    const int m = map_[static_cast<size_t>(col)];
    return m < 0 ? std::string_view() : chunk_.field(rows_[static_cast<size_t>(row)], m);
  }
  bool is_na(int64_t row, int col) const override {
    const int m = map_[static_cast<size_t>(col)];
    return m < 0 || chunk_.is_na(rows_[static_cast<size_t>(row)], m);
  }
  std::string where(int64_t row, int col) const override;

 private:
  const io::CsvChunk& chunk_;
  const std::vector<int>& map_;
  std::vector<int64_t> rows_;
};

// The CsvOptions a FeatureSpec's csv section describes.
io::CsvOptions csv_options(const CsvFormat& format, int threads);

}  // namespace kiln::transform
