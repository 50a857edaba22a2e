#pragma once
// A CSV chunk seen as RawRows: the bridge from io::CsvReader to the Transformer and analyzers.
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

 private:
  const io::CsvChunk& chunk_;
};

// The CsvOptions a FeatureSpec's csv section describes.
io::CsvOptions csv_options(const CsvFormat& format, int threads);

}  // namespace kiln::transform
