#pragma once
// Rows [begin, end) of another RawRows, numbered as in the whole (errors name the caller's row),
// so a large input is transformed and run one batch at a time.
#include <cstdint>

#include "transform/raw_rows.h"

namespace kiln::python {

class RowRange final : public transform::RawRows {
 public:
  RowRange(const transform::RawRows& all, int64_t begin, int64_t end) : all_(all), begin_(begin), end_(end) {}
  int64_t rows() const override { return end_ - begin_; }
  std::string_view field(int64_t row, int col) const override { return all_.field(begin_ + row, col); }
  bool is_na(int64_t row, int col) const override { return all_.is_na(begin_ + row, col); }
  std::string where(int64_t row, int col) const override { return all_.where(begin_ + row, col); }
  void column(int col, int64_t begin, int64_t end, std::string_view* values, uint8_t* na) const override {
    all_.column(col, begin_ + begin, begin_ + end, values, na);
  }
  const double* numbers(int col) const override {
    const double* all = all_.numbers(col);
    return all ? all + begin_ : nullptr;
  }

 private:
  const transform::RawRows& all_;
  int64_t begin_, end_;
};

}  // namespace kiln::python
