#pragma once
// Raw feature values as strings, row by row: CSV chunks in training and analysis, JSON
// instances in the server. The Transformer reads nothing else, so every path feeds it the same.
#include <cstdint>
#include <string>
#include <string_view>

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
};

}  // namespace kiln::transform
