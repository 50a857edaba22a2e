#pragma once
// The raw rows of one request, as the Transformer reads them. Values are views into the request
// body or into this object's arena (numbers written as text, joined multi-valued arrays); they
// live as long as this object and the body it was parsed from.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transform/raw_rows.h"

namespace kiln::runtime {

class RequestRows final : public transform::RawRows {
 public:
  // `container` names the rows in errors: "instances" gives "instances[3].mother_age".
  void reset(int columns, int64_t rows, std::vector<std::string> names, std::string container);

  int64_t rows() const override { return rows_; }
  std::string_view field(int64_t row, int col) const override { return fields_[index(row, col)]; }
  bool is_na(int64_t row, int col) const override { return na_[index(row, col)] != 0; }
  std::string where(int64_t row, int col) const override;

  void set(int64_t row, int col, std::string_view value) { fields_[index(row, col)] = value; }
  void set_na(int64_t row, int col) { na_[index(row, col)] = 1; }
  // Keeps `text` alive with the rows and returns a view of it.
  std::string_view store(std::string_view text);
  bool present(int64_t row, int col) const { return present_[index(row, col)] != 0; }
  void mark_present(int64_t row, int col) { present_[index(row, col)] = 1; }
  // Some row gave column `col` (the optional key: echo keys only to requests that sent them).
  bool any_present(int col) const {
    for (int64_t r = 0; r < rows_; ++r)
      if (present(r, col)) return true;
    return false;
  }

 private:
  size_t index(int64_t row, int col) const { return static_cast<size_t>(row) * columns_ + static_cast<size_t>(col); }
  int64_t rows_ = 0;
  size_t columns_ = 0;
  std::vector<std::string> names_;
  std::string container_;
  std::vector<std::string_view> fields_;
  std::vector<uint8_t> na_, present_;
  // Stored text lives in fixed blocks, allocated on first use (most requests store nothing
  // but numbers, a few bytes each); a block never moves, so views into it stay valid.
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t block_used_ = 0, block_size_ = 0;
};

}  // namespace kiln::runtime
