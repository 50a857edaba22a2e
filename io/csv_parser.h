#pragma once
// The CSV record grammar (RFC 4180 plus LF line endings and lone quotes inside unquoted fields),
// used by CsvReader: boundary scanning for the reader thread, in-place parsing for the workers.
// Internal to io/; the public interface is io/csv_reader.h.
//
// A record ends at a '\n' outside quotes; a '\r' just before it is dropped. A field is quoted
// when its first byte is the quote; inside, a doubled quote stands for one quote, and delimiters
// and newlines are data. A quote anywhere else in an unquoted field is an ordinary character.
// Both the scanner and the parser follow exactly these rules, so a chunk cut by the one always
// holds whole records for the other, whatever the data (malformed rows included).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::io::csv_detail {

// Slack a parse buffer needs after its text: the parser stores a '\n' sentinel at text[size]
// and its 64-byte vector scans may start at the sentinel.
constexpr size_t kPadding = 64;
constexpr size_t kNoRecordEnd = static_cast<size_t>(-1);

struct Syntax {
  char delimiter = ',';
  char quote = '"';
  bool validate_utf8 = true;
};

// A field's bytes within the parsed text (after unescaping).
struct FieldSpan {
  uint32_t begin;
  uint32_t size;
};

struct Issue {
  int64_t line = 0;
  int64_t column = 0;  // 1-based field number; 0 = the whole record
  std::string reason;
};

// Which fields of a record are stored. Every field is still parsed and checked (field count,
// quoting, UTF-8), so a layout changes what is kept, never which rows are good; skipping the
// unused columns of a wide file saves their stores and keeps a stored row within a cache line or
// two.
class Layout {
 public:
  // Field count taken from the first good record, every column stored (for headers).
  Layout() = default;
  // `columns` fields per record; `kept` lists the stored columns (empty: all of them).
  explicit Layout(int columns, const std::vector<int>& kept = {});

  int columns() const { return columns_; }
  int stride() const { return static_cast<int>(kept_.size()); }  // FieldSpans per stored row
  // Column c's position within a stored row; -1 when it is not stored.
  int slot(int c) const { return slot_[static_cast<size_t>(c)]; }
  // The stored columns, ascending: kept()[k] is stored at position k.
  const std::vector<int>& kept() const { return kept_; }

 private:
  int columns_ = -1;
  std::vector<int> slot_, kept_;
};

// The good records of a text. `fields` is row-major with layout.stride() per row; it only grows
// (a recycled Rows keeps its storage), so its size may exceed rows() * stride.
struct Rows {
  int columns = 0;
  Layout layout;
  std::vector<FieldSpan> fields;
  std::vector<int64_t> lines;  // physical line where each row starts
  std::vector<Issue> issues;   // skipped records, in text order
  int64_t rows() const { return static_cast<int64_t>(lines.size()); }
  const FieldSpan& field(int64_t row, int col) const {
    return fields[static_cast<size_t>(row) * static_cast<size_t>(layout.stride()) +
                  static_cast<size_t>(layout.slot(col))];
  }
};

// Offset just past the '\n' ending the record that starts at (or, after a closing quote,
// continues at) text[from]; kNoRecordEnd when the text ends first.
size_t first_record_end(const char* text, size_t size, size_t from, const Syntax& syntax);

// Offset just past the '\n' ending the last complete record of text[0, size), which starts at a
// record boundary; 0 when no record is complete.
size_t last_record_end(const char* text, size_t size, const Syntax& syntax);

// The '\n' bytes in [begin, end).
int64_t count_newlines(const char* begin, const char* end);

// Skips the blank lines at text[*pos]; false when the text ends (or ends in a lone '\r') first.
bool skip_blank_lines(const char* text, size_t size, size_t* pos);

// Offsets of the bytes that start an invalid UTF-8 sequence (overlong forms, surrogates and
// code points above U+10FFFF included).
void find_invalid_utf8(const char* text, size_t size, std::vector<size_t>* out);

// Parses text[0, size), which starts at a record boundary and ends at one (or at the end of the
// file), into `out`, storing the fields `layout` keeps. text[size, size + kPadding) must be
// writable. Quoted fields are unescaped in place. Malformed records go to out->issues and are
// left out.
void parse_records(char* text, size_t size, int64_t first_line, const Layout& layout, const Syntax& syntax, Rows* out);

}  // namespace kiln::io::csv_detail
