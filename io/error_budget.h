#pragma once
// Malformed input is counted and skipped up to a budget, then the read fails. One budget is
// shared by everything that reads the same data (the CSV parser for broken rows, the transform
// for unparseable values), so the limit applies to their sum.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::io {

struct BadRow {
  std::string file;
  int64_t line = 0;    // 1-based; 0 = unknown (then `file` may already say where)
  int64_t column = 0;  // 1-based field number; 0 = whole row
  std::string reason;
};

// "FILE:LINE:COL: REASON", leaving out LINE and COL where they are 0.
std::string format_bad_row(const BadRow& row);

class ErrorBudget {  // thread-safe
 public:
  // A negative budget never fails.
  explicit ErrorBudget(int64_t max_bad_rows);

  // Records one bad row, counted under `category` ("malformed CSV row" when empty); throws
  // kiln::Error "FILE:LINE:COL: REASON" plus a hint naming csv.max_bad_rows once the count
  // exceeds the budget. `rows` > 1 records one problem that costs that many rows (a corrupt
  // block of an example shard): they are skipped together or not at all.
  void add(const BadRow& row, const std::string& category = {}, int64_t rows = 1);
  // A row left out on purpose (a missing label under label_missing SKIP, a DROP_ROW feature):
  // counted under `category` (n rows), never against the budget.
  void skip(const std::string& category, int64_t n = 1);
  int64_t count() const;
  // Every row left out, bad or skipped, by category.
  std::map<std::string, int64_t> left_out() const;
  int64_t max_bad_rows() const { return max_; }
  // The first bad rows seen (in arrival order), for summaries.
  std::vector<BadRow> first(size_t n = 10) const;

 private:
  static constexpr size_t kKeep = 100;

  const int64_t max_;
  mutable std::mutex mutex_;
  int64_t count_ = 0;
  std::vector<BadRow> first_;
  std::map<std::string, int64_t> left_out_;
};

// "N rows left out: 8481 missing label, 2 malformed CSV row" ("no rows left out" when empty).
std::string describe_left_out(const std::map<std::string, int64_t>& left_out);

}  // namespace kiln::io
