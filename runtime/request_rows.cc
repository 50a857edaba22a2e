#include "runtime/request_rows.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace kiln::runtime {

void RequestRows::reset(int columns, int64_t rows, std::vector<std::string> names, std::string container) {
  rows_ = rows;
  columns_ = static_cast<size_t>(columns);
  names_ = std::move(names);
  container_ = std::move(container);
  fields_.assign(static_cast<size_t>(rows) * columns_, std::string_view());
  na_.assign(fields_.size(), 0);
  present_.assign(fields_.size(), 0);
  blocks_.clear();
  block_used_ = block_size_ = 0;
}

std::string RequestRows::where(int64_t row, int col) const {
  return str_cat(container_, "[", row, "].", names_[static_cast<size_t>(col)]);
}

std::string_view RequestRows::store(std::string_view text) {
  if (text.empty()) return {};
  if (block_used_ + text.size() > block_size_) {
    block_size_ = std::max<size_t>(4096, text.size());
    blocks_.emplace_back(new char[block_size_]);
    block_used_ = 0;
  }
  char* at = blocks_.back().get() + block_used_;
  std::memcpy(at, text.data(), text.size());
  block_used_ += text.size();
  return {at, text.size()};
}

}  // namespace kiln::runtime
