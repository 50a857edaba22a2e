#pragma once
// Raw feature values as strings, row by row: CSV chunks in training and analysis, JSON
// instances in the server, in-memory columns (transform/column_rows.h). The Transformer reads
// nothing else, so every path feeds it the same.
#include <cstdint>
#include <string>
#include <string_view>

#include "io/number_parse.h"

namespace kiln::transform {

class RawRows {
 public:
  virtual ~RawRows() = default;
  virtual int64_t rows() const = 0;
  // `col` indexes the source's columns (see Transformer's column binding).
  virtual std::string_view field(int64_t row, int col) const = 0;
  virtual bool is_na(int64_t row, int col) const = 0;
  // Where a value came from, for error messages: "data.csv:17:4" or "instances[3].mother_age".
  virtual std::string where(int64_t row, int col) const = 0;
  // A column the source holds as numbers (rows() doubles, NaN = missing), read directly by numeric
  // and bucketized features and a numeric label instead of parsing field(); field() still works
  // for it (text that parses back to the same double), and is_na() is true exactly for NaN.
  // nullptr: the column is text.
  virtual const double* numbers(int /*col*/) const { return nullptr; }

  // field() and is_na() of rows [begin, end) of one column, for column-at-a-time readers: one
  // virtual call per block of rows instead of two per value. Sources override it when they can
  // do better than this loop.
  virtual void column(int col, int64_t begin, int64_t end, std::string_view* values, uint8_t* na) const {
    for (int64_t r = begin; r < end; ++r) {
      values[r - begin] = field(r, col);
      na[r - begin] = is_na(r, col);
    }
  }
  // io::parse_double() of n values column() gave: ok[i] says whether values[i] parsed, and out[i]
  // is then its value. Sources override it when they can do better than this loop.
  virtual void parse_numbers(const std::string_view* values, size_t n, double* out, uint8_t* ok) const {
    for (size_t i = 0; i < n; ++i) ok[i] = io::parse_double(values[i], &out[i]);
  }
};

// Calls fn(value) for each value of a multi-valued cell split on `delimiter`, trimmed of spaces
// and tabs, empty pieces skipped; with no delimiter the cell is one value. Analysis and the
// Transformer split the same way.
template <typename Fn>
void for_each_value(std::string_view cell, const std::string& delimiter, Fn&& fn) {
  if (delimiter.empty()) {
    fn(cell);
    return;
  }
  size_t start = 0;
  while (start <= cell.size()) {
    size_t end = cell.find(delimiter, start);
    if (end == std::string_view::npos) end = cell.size();
    std::string_view piece = cell.substr(start, end - start);
    while (!piece.empty() && (piece.front() == ' ' || piece.front() == '\t')) piece.remove_prefix(1);
    while (!piece.empty() && (piece.back() == ' ' || piece.back() == '\t')) piece.remove_suffix(1);
    if (!piece.empty()) fn(piece);
    start = end + delimiter.size();
  }
}

}  // namespace kiln::transform
