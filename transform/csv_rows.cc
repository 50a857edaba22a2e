#include "transform/csv_rows.h"

#include "core/error.h"

namespace kiln::transform {

std::string CsvRows::where(int64_t row, int col) const {
  return str_cat(chunk_.file(), ":", chunk_.line(row), ":", col + 1);
}

std::string BoundCsvRows::where(int64_t row, int col) const {
  return CsvRows(chunk_).where(rows_[static_cast<size_t>(row)], map_[static_cast<size_t>(col)]);
}

io::CsvOptions csv_options(const CsvFormat& format, int threads) {
  io::CsvOptions o;
  if (format.delimiter().size() != 1) fail("feature_spec.csv.delimiter must be one character, got '", format.delimiter(), "'");
  if (format.quote().size() != 1) fail("feature_spec.csv.quote must be one character, got '", format.quote(), "'");
  o.delimiter = format.delimiter()[0];
  o.quote = format.quote()[0];
  o.header = format.header();
  o.column_names.assign(format.column_names().begin(), format.column_names().end());
  if (!o.header && o.column_names.empty()) fail("feature_spec.csv.column_names is required when csv.header is false");
  if (format.na_values_size() > 0) o.na_values.assign(format.na_values().begin(), format.na_values().end());
  o.threads = std::max(threads, 1);
  return o;
}

}  // namespace kiln::transform
