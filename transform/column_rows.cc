#include "transform/column_rows.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <mutex>

#include "core/error.h"

namespace kiln::transform {

struct ColumnRows::Column {
  const double* numbers = nullptr;  // a numeric column; else text with `na`
  std::vector<uint8_t> na;
  // A numeric column's text is made on first use (from const readers, once): `values` view `text`.
  mutable std::vector<std::string_view> values;
  mutable std::string text;
  mutable std::once_flag made;
};

namespace {

// std::to_chars' shortest round-trip form (3.0 as "3", 1e15 as "1e+15"): exactly the text the
// server makes of a JSON number it reads as text (runtime/json_request.cc), so a float column read
// by a categorical feature matches in Python and over REST. It parses back to x exactly.
size_t number_text(double x, char* out, size_t size) {
  if (std::isnan(x)) return 0;
  const std::to_chars_result r = std::to_chars(out, out + size, x);
  KILN_CHECK(r.ec == std::errc(), "to_chars of ", x);
  return static_cast<size_t>(r.ptr - out);
}

}  // namespace

ColumnRows::ColumnRows(int64_t rows, std::string container) : rows_(rows), container_(std::move(container)) {
  if (rows < 0) fail(container_, ": negative row count ", rows);
}

ColumnRows::~ColumnRows() = default;

int ColumnRows::add(std::string name, std::unique_ptr<Column> column) {
  if (std::find(names_.begin(), names_.end(), name) != names_.end())
    fail(container_, ": column '", name, "' is given twice");
  names_.push_back(std::move(name));
  columns_.push_back(std::move(column));
  return static_cast<int>(columns_.size() - 1);
}

int ColumnRows::add_numbers(std::string name, const double* values) {
  if (!values && rows_ > 0) fail(container_, ": column '", name, "' has no values");
  auto c = std::make_unique<Column>();
  c->numbers = values;
  return add(std::move(name), std::move(c));
}

int ColumnRows::add_text(std::string name, std::vector<std::string_view> values, std::vector<uint8_t> na) {
  if (static_cast<int64_t>(values.size()) != rows_)
    fail(container_, ": column '", name, "' has ", values.size(), " values for ", rows_, " rows");
  if (!na.empty() && na.size() != values.size())
    fail(container_, ": column '", name, "' has ", na.size(), " missing flags for ", rows_, " rows");
  auto c = std::make_unique<Column>();
  c->values = std::move(values);
  c->na = na.empty() ? std::vector<uint8_t>(c->values.size(), 0) : std::move(na);
  return add(std::move(name), std::move(c));
}

const ColumnRows::Column& ColumnRows::checked(int64_t row, int col) const {
  KILN_CHECK(row >= 0 && row < rows_ && col >= 0 && col < static_cast<int>(columns_.size()), "cell (", row, ", ", col,
             ") of ", rows_, " x ", columns_.size(), " rows");
  return *columns_[static_cast<size_t>(col)];
}

const std::vector<std::string_view>& ColumnRows::text(const Column& c) const {
  if (!c.numbers) return c.values;
  std::call_once(c.made, [&] {
    constexpr size_t kMaxText = 32;  // to_chars' longest double is 24 characters
    std::vector<size_t> ends(static_cast<size_t>(rows_));
    char buf[kMaxText];
    for (int64_t r = 0; r < rows_; ++r) {
      c.text.append(buf, number_text(c.numbers[r], buf, kMaxText));
      ends[static_cast<size_t>(r)] = c.text.size();
    }
    c.values.resize(ends.size());
    size_t begin = 0;  // views are taken once the text no longer grows
    for (size_t r = 0; r < ends.size(); ++r) {
      c.values[r] = std::string_view(c.text).substr(begin, ends[r] - begin);
      begin = ends[r];
    }
  });
  return c.values;
}

std::string_view ColumnRows::field(int64_t row, int col) const {
  return text(checked(row, col))[static_cast<size_t>(row)];
}

bool ColumnRows::is_na(int64_t row, int col) const {
  const Column& c = checked(row, col);
  return c.numbers ? std::isnan(c.numbers[row]) : c.na[static_cast<size_t>(row)] != 0;
}

std::string ColumnRows::where(int64_t row, int col) const {
  return str_cat(container_, "[", row, "].", names_[static_cast<size_t>(col)]);
}

const double* ColumnRows::numbers(int col) const {
  KILN_CHECK(col >= 0 && col < static_cast<int>(columns_.size()), "column ", col, " of ", columns_.size());
  return columns_[static_cast<size_t>(col)]->numbers;
}

void ColumnRows::column(int col, int64_t begin, int64_t end, std::string_view* values, uint8_t* na) const {
  KILN_CHECK(begin >= 0 && begin <= end && end <= rows_, "rows [", begin, ", ", end, ") of ", rows_);
  const double* x = numbers(col);
  const Column& c = *columns_[static_cast<size_t>(col)];
  const std::vector<std::string_view>& t = text(c);
  std::copy(t.begin() + begin, t.begin() + end, values);
  for (int64_t r = begin; r < end; ++r) na[r - begin] = x ? std::isnan(x[r]) : c.na[static_cast<size_t>(r)];
}

}  // namespace kiln::transform
