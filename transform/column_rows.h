#pragma once
// ColumnRows: rows held column by column in memory the caller owns (numpy arrays, pandas
// columns), nothing copied. Numeric columns are read as numbers by numeric features and the
// label (RawRows::numbers), so a double never goes through text on its way to the Transformer or
// analysis; their text is made only when something asks for it.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transform/raw_rows.h"

namespace kiln::transform {

class ColumnRows final : public RawRows {
 public:
  // `container` names the rows in errors: "rows" gives "rows[3].mother_age".
  explicit ColumnRows(int64_t rows, std::string container = "rows");
  ~ColumnRows() override;

  // Each returns the column's index (its position in names()); a name given twice is a
  // kiln::Error. The memory must outlive this object and stay unchanged.
  // rows() doubles, NaN missing. field() gives std::to_chars' shortest text that parses back to
  // the same double ("3", not "3.0"; "1e+15"; "" for NaN), as the server writes a JSON number it
  // reads as text; made on first use of the column (thread-safe).
  int add_numbers(std::string name, const double* values);
  // rows() views; na[i] != 0 marks row i missing (na empty: none is).
  int add_text(std::string name, std::vector<std::string_view> values, std::vector<uint8_t> na);

  const std::vector<std::string>& names() const { return names_; }

  int64_t rows() const override { return rows_; }
  std::string_view field(int64_t row, int col) const override;
  bool is_na(int64_t row, int col) const override;
  std::string where(int64_t row, int col) const override;
  const double* numbers(int col) const override;
  void column(int col, int64_t begin, int64_t end, std::string_view* values, uint8_t* na) const override;

 private:
  struct Column;
  int add(std::string name, std::unique_ptr<Column> column);
  const Column& checked(int64_t row, int col) const;
  // The column's views, made first for a numeric column.
  const std::vector<std::string_view>& text(const Column& c) const;

  int64_t rows_;
  std::string container_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<Column>> columns_;
};

}  // namespace kiln::transform
