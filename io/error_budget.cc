#include "io/error_budget.h"

#include <algorithm>

#include "core/error.h"

namespace kiln::io {

std::string format_bad_row(const BadRow& row) {
  std::string out = row.file;
  if (row.line > 0) out += str_cat(":", row.line);
  if (row.line > 0 && row.column > 0) out += str_cat(":", row.column);
  return out + ": " + row.reason;
}

ErrorBudget::ErrorBudget(int64_t max_bad_rows) : max_(max_bad_rows) {}

void ErrorBudget::add(const BadRow& row) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++count_;
  if (first_.size() < kKeep) first_.push_back(row);
  if (max_ < 0 || count_ <= max_) return;
  std::string message = format_bad_row(row);
  if (max_ > 0) message += str_cat(" (more than ", max_, " malformed rows; raise csv.max_bad_rows to skip them)");
  throw Error(message);
}

int64_t ErrorBudget::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return count_;
}

std::vector<BadRow> ErrorBudget::first(size_t n) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::vector<BadRow>(first_.begin(),
                             first_.begin() + static_cast<std::ptrdiff_t>(std::min(n, first_.size())));
}

}  // namespace kiln::io
