#include "serve/request_rows.h"

#include "core/error.h"

namespace kiln::serve {

void RequestRows::reset(int columns, int64_t rows, std::vector<std::string> names, std::string container) {
  rows_ = rows;
  columns_ = static_cast<size_t>(columns);
  names_ = std::move(names);
  container_ = std::move(container);
  fields_.assign(static_cast<size_t>(rows) * columns_, std::string_view());
  na_.assign(fields_.size(), 0);
  present_.assign(fields_.size(), 0);
  arena_.clear();
}

std::string RequestRows::where(int64_t row, int col) const {
  return str_cat(container_, "[", row, "].", names_[static_cast<size_t>(col)]);
}

std::string_view RequestRows::store(std::string_view text) { return arena_.emplace_back(text); }

}  // namespace kiln::serve
