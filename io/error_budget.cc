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

void ErrorBudget::add(const BadRow& row, const std::string& category, int64_t rows) {
  std::lock_guard<std::mutex> lock(mutex_);
  count_ += rows;
  left_out_[category.empty() ? "malformed CSV row" : category] += rows;
  if (first_.size() < kKeep) first_.push_back(row);
  if (max_ < 0 || count_ <= max_) return;
  std::string message = format_bad_row(row);
  if (max_ > 0)
    message += str_cat(" (more than ", max_, " malformed rows; raise csv.max_bad_rows to skip more, -1 for no limit)");
  else
    message += " (csv.max_bad_rows is 0; set it to skip malformed rows, -1 for no limit)";
  throw Error(message);
}

void ErrorBudget::skip(const std::string& category, int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  left_out_[category] += n;
}

std::map<std::string, int64_t> ErrorBudget::left_out() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return left_out_;
}

std::string describe_left_out(const std::map<std::string, int64_t>& left_out) {
  int64_t total = 0;
  std::string parts;
  for (const auto& [category, n] : left_out) {
    total += n;
    parts += str_cat(parts.empty() ? "" : ", ", n, " ", category);
  }
  if (total == 0) return "no rows left out";
  return str_cat(total, total == 1 ? " row" : " rows", " left out: ", parts);
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
