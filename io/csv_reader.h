#pragma once
// Streaming CSV input: sharded, optionally gzipped files parsed in ~chunk_bytes blocks by
// several threads, with malformed rows counted against an ErrorBudget and skipped.
//
// Grammar: RFC 4180 (see io/csv_parser.h): quoted fields may hold delimiters, doubled quotes
// and newlines; LF or CRLF line endings; the last line may lack its newline; blank lines are
// skipped (so a one-column file writes an empty value as ""). A UTF-8 byte order mark at the
// start of a file is dropped.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "io/csv_parser.h"
#include "io/error_budget.h"

namespace kiln::io {

struct CsvOptions {
  char delimiter = ',';
  char quote = '"';
  bool header = true;
  // Required when header is false. With a header, names given here replace the header's (the
  // counts must agree).
  std::vector<std::string> column_names;
  std::vector<std::string> na_values = {"", "NA", "N/A", "NaN", "nan", "null", "NULL"};
  size_t chunk_bytes = 4 << 20;
  int threads = 1;  // parser threads
  bool validate_utf8 = true;
};

namespace csv_detail {

class Pipeline;

// The NA spellings, keyed by first byte and length so that most fields are decided by two bit
// tests (numbers never start like "NA", "null" or "nan" do).
class NaSet {
 public:
  explicit NaSet(const std::vector<std::string>& values);
  bool contains(std::string_view s) const {
    if (s.empty()) return empty_;
    const auto first = static_cast<unsigned char>(s[0]);
    if (!((first_bytes_[first >> 6] >> (first & 63)) & 1)) return false;
    const size_t key = s.size() < 63 ? s.size() : 63;
    if (!((lengths_ >> key) & 1)) return false;
    for (const std::string& v : values_)
      if (v.size() == s.size() && v[0] == s[0] && v == s) return true;
    return false;
  }

 private:
  bool empty_ = false;           // "" is NA
  uint64_t first_bytes_[4] = {};  // bit b: some value starts with byte b
  uint64_t lengths_ = 0;          // bit k: some value has length k (bit 63: length 63 or more)
  std::vector<std::string> values_;
};

// CsvChunk objects alive now, for tests of the memory bound.
int64_t live_chunks();

}  // namespace csv_detail

// A block of parsed rows; fields are views into the chunk's own storage, valid while the chunk
// is (that is, during the for_each_chunk callback that receives it).
class CsvChunk {
 public:
  ~CsvChunk();
  CsvChunk(const CsvChunk&) = delete;
  CsvChunk& operator=(const CsvChunk&) = delete;

  // Sequence number over all files, in file order; chunk boundaries depend on the data and
  // chunk_bytes only, never on the thread count.
  int64_t index() const { return index_; }
  const std::string& file() const { return *file_; }
  int64_t rows() const { return rows_.rows(); }
  int columns() const { return rows_.columns; }
  // Quotes removed, doubled quotes unescaped. `col` must be one of the reader's selected columns.
  std::string_view field(int64_t row, int col) const {
    KILN_CHECK(row >= 0 && row < rows() && col >= 0 && col < columns() && rows_.layout.slot(col) >= 0,
               "CSV cell (", row, ", ", col, ") of ", rows(), " x ", columns(), " (or a column not selected)");
    const csv_detail::FieldSpan& s = rows_.field(row, col);
    return {text_ + s.begin, s.size};
  }
  // The field equals one of CsvOptions::na_values.
  bool is_na(int64_t row, int col) const { return na_->contains(field(row, col)); }
  // field() and is_na() of rows [begin, end) of column col (checked once, not per row).
  void column(int col, int64_t begin, int64_t end, std::string_view* values, uint8_t* na) const {
    KILN_CHECK(begin >= 0 && begin <= end && end <= rows() && col >= 0 && col < columns() && rows_.layout.slot(col) >= 0,
               "CSV rows [", begin, ", ", end, ") of column ", col, " in ", rows(), " x ", columns(),
               " (or a column not selected)");
    const csv_detail::FieldSpan* span = rows_.fields.data() + static_cast<size_t>(rows_.layout.slot(col));
    const auto stride = static_cast<size_t>(rows_.layout.stride());
    // Locals, not members: the byte stores to na could alias members, which would then be
    // reloaded for every row.
    const char* const text = text_;
    const csv_detail::NaSet& na_set = *na_;
    for (int64_t r = begin; r < end; ++r) {
      const csv_detail::FieldSpan& s = span[static_cast<size_t>(r) * stride];
      const std::string_view value(text + s.begin, s.size);
      values[r - begin] = value;
      na[r - begin] = na_set.contains(value);
    }
  }
  // io::parse_double() of n views into the chunk (from field() or column()): ok[i] says whether
  // values[i] parsed, and out[i] is then its value. Faster: the padding after the chunk's text
  // lets short numbers be read without tests of their length.
  void parse_numbers(const std::string_view* values, size_t n, double* out, uint8_t* ok) const;
  // 1-based physical line where the row starts.
  int64_t line(int64_t row) const {
    KILN_CHECK(row >= 0 && row < rows());
    return rows_.lines[static_cast<size_t>(row)];
  }

 private:
  friend class csv_detail::Pipeline;
  CsvChunk();

  int64_t index_ = 0;
  const std::string* file_ = nullptr;
  const csv_detail::NaSet* na_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;  // usable bytes in buffer_, before kPadding
  char* text_ = nullptr;
  size_t size_ = 0;
  int64_t first_line_ = 1;
  csv_detail::Rows rows_;
};

struct CsvStats {
  int64_t rows = 0;      // rows delivered
  int64_t bad_rows = 0;  // malformed rows skipped by the reader
  int64_t bytes = 0;     // CSV text read (uncompressed), headers included
  int64_t files = 0;
};

class CsvReader {
 public:
  // Opens every file's header now: a missing file, an empty file, or a header differing from
  // the first file's is a kiln::Error naming the file. A null budget allows no bad rows.
  CsvReader(std::vector<std::string> files, CsvOptions options, std::shared_ptr<ErrorBudget> budget);

  const std::vector<std::string>& column_names() const { return columns_; }
  int column_index(const std::string& name) const;  // -1 when absent
  // Keeps only these columns' fields in the chunks (default: all). The other fields are still
  // parsed and checked, so the same rows are good or bad; they are just not stored.
  void select_columns(const std::vector<int>& columns);

  // Streams all rows of all files (in order) as chunks. With threads > 1, chunks are parsed in
  // parallel and fn is called concurrently from several threads (each chunk exactly once; use
  // chunk.index() to order results). With threads == 1, fn runs on the calling thread, in
  // order. Exceptions from fn or from parsing propagate out of for_each_chunk after the workers
  // stop. At most 2 * threads + 1 chunks are alive at a time, whatever the file size.
  void for_each_chunk(const std::function<void(const CsvChunk&)>& fn);
  CsvStats stats() const { return stats_; }  // after for_each_chunk

 private:
  friend class csv_detail::Pipeline;

  std::vector<std::string> files_;
  CsvOptions options_;
  std::shared_ptr<ErrorBudget> budget_;
  std::vector<std::string> columns_;
  std::unordered_map<std::string, int> column_index_;
  csv_detail::NaSet na_;
  csv_detail::Layout layout_;
  CsvStats stats_;
};

}  // namespace kiln::io
