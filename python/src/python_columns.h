#pragma once
// Columns handed over by the kiln package (python/kiln/_columns.py): 1-D C-contiguous float64
// numpy arrays, read in place (not copied), or lists of str and None (None: missing), copied once
// into text. A consumer binds them by name, in its own order, as a transform::ColumnRows.
// Build with the GIL held; the result is read without it.
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include <nanobind/nanobind.h>

#include "transform/column_rows.h"

namespace kiln::python {

class PythonColumns {
 public:
  explicit PythonColumns(const nanobind::dict& given);
  int64_t rows() const { return rows_; }
  bool has(const std::string& name) const { return find(name) != nullptr; }
  // The column's numbers, or null for a text column.
  const double* numbers(const std::string& name) const;
  // Text values and missing flags of a text column (empty for numbers).
  const std::vector<std::string_view>& text(const std::string& name) const;
  const std::vector<uint8_t>& missing(const std::string& name) const;
  // Adds column `name` to `out`: numbers in place, text as views into this object.
  int add_to(transform::ColumnRows& out, const std::string& name) const;

 private:
  struct Column {
    std::string name;
    const double* numbers = nullptr;
    std::vector<std::string_view> text;
    std::vector<uint8_t> na;
  };
  const Column* find(const std::string& name) const;
  const Column& at(const std::string& name) const;
  std::vector<nanobind::object> arrays_;  // keeps the numpy arrays alive
  std::deque<std::string> storage_;       // copied text; a deque never moves its strings
  std::vector<Column> columns_;
  int64_t rows_ = -1;
};

}  // namespace kiln::python
