#include "io/csv_parser.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "core/error.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace kiln::io::csv_detail {
namespace {

// Whether the quote at q opens a quoted field: it is the first byte of a field. `region` is
// where the scan began, a record start (or the byte after a closing quote, which is never a
// quote, so the test stays right there too).
inline bool opens_field(const char* q, const char* region, char delimiter) {
  return q == region || q[-1] == delimiter || q[-1] == '\n';
}

// Past the quote that closes the quoted field whose content starts at p; nullptr when the text
// ends first (a quote at the very end may be the first of a doubled pair, so it does not count).
inline const char* skip_quoted(const char* p, const char* end, char quote) {
  for (;;) {
    const char* q = static_cast<const char*>(std::memchr(p, quote, static_cast<size_t>(end - p)));
    if (!q || q + 1 == end) return nullptr;
    if (q[1] != quote) return q + 1;
    p = q + 2;
  }
}

// Bit i set when p[i] is the delimiter or '\n' (*separators), or '\n' (*newlines), for the 64
// bytes at p.
inline void separator_masks(const char* p, char delimiter, uint64_t* separators, uint64_t* newlines) {
#if defined(__AVX2__)
  const __m256i d = _mm256_set1_epi8(delimiter), nl = _mm256_set1_epi8('\n');
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  const __m256i a_nl = _mm256_cmpeq_epi8(a, nl), b_nl = _mm256_cmpeq_epi8(b, nl);
  auto bits = [](__m256i low, __m256i high) {
    return static_cast<uint32_t>(_mm256_movemask_epi8(low)) |
           uint64_t{static_cast<uint32_t>(_mm256_movemask_epi8(high))} << 32;
  };
  *newlines = bits(a_nl, b_nl);
  *separators = bits(_mm256_or_si256(a_nl, _mm256_cmpeq_epi8(a, d)), _mm256_or_si256(b_nl, _mm256_cmpeq_epi8(b, d)));
#else
  uint64_t s = 0, n = 0;
  for (int i = 0; i < 64; ++i) {
    n |= static_cast<uint64_t>(p[i] == '\n') << i;
    s |= static_cast<uint64_t>(p[i] == delimiter || p[i] == '\n') << i;
  }
  *separators = s;
  *newlines = n;
#endif
}

// Yields the separators (delimiters and newlines) after a position, 64 bytes per scan; the
// '\n' sentinel after the text guarantees it stops.
class SeparatorCursor {
 public:
  explicit SeparatorCursor(char delimiter) : delimiter_(delimiter) {}
  void reset(const char* p) {
    base_ = p;
    separator_masks(p, delimiter_, &separators_, &newlines_);
  }
  char* next() {
    while (separators_ == 0) {
      base_ += 64;
      separator_masks(base_, delimiter_, &separators_, &newlines_);
    }
    const char* s = base_ + std::countr_zero(separators_);
    separators_ &= separators_ - 1;
    return const_cast<char*>(s);
  }

 private:
  char delimiter_;
  const char* base_ = nullptr;
  uint64_t separators_ = 0, newlines_ = 0;  // newlines_: unused here
};

// Length of the valid UTF-8 sequence at s (whose first byte is not ASCII), or 0.
inline size_t utf8_sequence_length(const unsigned char* s, size_t avail) {
  auto in = [&](size_t k, unsigned lo, unsigned hi) { return k < avail && s[k] >= lo && s[k] <= hi; };
  const unsigned c = s[0];
  if (c >= 0xC2 && c <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
  unsigned lo = 0x80, hi = 0xBF;  // range of the second byte, which excludes the invalid forms
  size_t length = 0;
  if (c >= 0xE0 && c <= 0xEF) {
    length = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    length = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (!in(1, lo, hi)) return 0;
  for (size_t k = 2; k < length; ++k)
    if (!in(k, 0x80, 0xBF)) return 0;
  return length;
}

inline bool ascii_block(const char* p) {
  uint64_t w[4];
  std::memcpy(w, p, sizeof w);
  return ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ull) == 0;
}

std::string printable(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return std::string(1, c);
  static const char kHex[] = "0123456789abcdef";
  return std::string("\\x") + kHex[u >> 4] + kHex[u & 15];
}


}  // namespace

int64_t count_newlines(const char* begin, const char* end) {
  int64_t n = 0;
#if defined(__AVX2__)
  // 32 bytes per step (std::count goes a byte at a time here): the reader counts every chunk.
  const __m256i nl = _mm256_set1_epi8('\n');
  for (; end - begin >= 32; begin += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(begin));
    n += __builtin_popcount(static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, nl))));
  }
#endif
  return n + std::count(begin, end, '\n');
}

size_t first_record_end(const char* text, size_t size, size_t from, const Syntax& syntax) {
  const char* const end = text + size;
  const char* const region = text + from;
  const char* p = region;
  while (p < end) {
    // Look for the newline first, then only for quotes before it: most records hold none.
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* limit = nl ? nl : end;
    const char* q = static_cast<const char*>(std::memchr(p, syntax.quote, static_cast<size_t>(limit - p)));
    if (!q) return nl ? static_cast<size_t>(nl - text) + 1 : kNoRecordEnd;
    if (!opens_field(q, region, syntax.delimiter)) {
      p = q + 1;
      continue;
    }
    p = skip_quoted(q + 1, end, syntax.quote);
    if (!p) return kNoRecordEnd;
  }
  return kNoRecordEnd;
}

size_t last_record_end(const char* text, size_t size, const Syntax& syntax) {
  const char* const end = text + size;
  const char* p = text;
  size_t last = 0;
  while (p < end) {
    const char* q = static_cast<const char*>(std::memchr(p, syntax.quote, static_cast<size_t>(end - p)));
    const char* stop = q ? q : end;
    if (const void* nl = ::memrchr(p, '\n', static_cast<size_t>(stop - p)))
      last = static_cast<size_t>(static_cast<const char*>(nl) - text) + 1;
    if (!q) break;
    if (!opens_field(q, text, syntax.delimiter)) {
      p = q + 1;
      continue;
    }
    p = skip_quoted(q + 1, end, syntax.quote);
    if (!p) break;
  }
  return last;
}

bool skip_blank_lines(const char* text, size_t size, size_t* pos) {
  size_t p = *pos;
  for (;;) {
    if (p < size && text[p] == '\n') {
      ++p;
    } else if (p + 1 < size && text[p] == '\r' && text[p + 1] == '\n') {
      p += 2;
    } else {
      break;
    }
  }
  *pos = p;
  return p < size && !(text[p] == '\r' && p + 1 == size);
}

void find_invalid_utf8(const char* text, size_t size, std::vector<size_t>* out) {
  const auto* s = reinterpret_cast<const unsigned char*>(text);
  size_t i = 0;
  while (i < size) {
    while (i + 32 <= size && ascii_block(text + i)) i += 32;
    const size_t stop = std::min(size, i + 32);
    while (i < stop) {
      if (s[i] < 0x80) {
        ++i;
      } else if (size_t n = utf8_sequence_length(s + i, size - i)) {
        i += n;
      } else {
        out->push_back(i);
        ++i;
      }
    }
  }
}

Layout::Layout(int columns, const std::vector<int>& kept) : columns_(columns), slot_(static_cast<size_t>(columns), -1) {
  KILN_CHECK(columns > 0, "CSV layout of ", columns, " columns");
  std::vector<bool> keep(static_cast<size_t>(columns), kept.empty());
  for (int c : kept) {
    KILN_CHECK(c >= 0 && c < columns, "CSV column ", c, " of ", columns);
    keep[static_cast<size_t>(c)] = true;
  }
  for (int c = 0; c < columns; ++c)
    if (keep[static_cast<size_t>(c)]) {
      slot_[static_cast<size_t>(c)] = static_cast<int>(kept_.size());
      kept_.push_back(c);
    }
}

namespace {

// One parse_records call. Most records take the fast path: no quote and no invalid byte inside,
// the right field count. A vector scan lists the offsets of all separators and which of them are
// newlines, so a record's field count is a subtraction and its kept fields are read straight
// from the list. Any other record (and the header, whose field count is unknown) is parsed by
// the general path, which knows every rule and names what is wrong.
class RecordParser {
 public:
  RecordParser(char* text, size_t size, int64_t first_line, const Syntax& syntax, Rows* out)
      : text_(text), end_(text + size), syntax_(syntax), out_(out), cursor_(syntax.delimiter), line_(first_line) {
    *end_ = '\n';  // sentinel: the separator scan needs no bounds check
    // Invalid UTF-8 is found for the whole text at once (an ASCII text takes one fast pass); the
    // parsers then ask whether the next bad byte lies inside a record.
    if (syntax.validate_utf8) find_invalid_utf8(text, size, &bad_bytes_);
    const void* q = std::memchr(text, syntax.quote, size);
    quote_ = q ? static_cast<const char*>(q) : none();
  }

  void run() {
    char* p = text_;
    while (p < end_) {
      if (out_->layout.columns() > 0 && fast_record(&p)) continue;
      general_record(&p);
      // Past what general_record() read, in the flattened separators too.
      while (sep_ < sep_count_ && text_ + seps_[sep_] < p) ++sep_;
      while (newline_ < newline_count_ && newlines_[newline_] < sep_) ++newline_;
    }
  }

 private:
  const char* none() const { return end_ + 1; }

  // The first invalid byte at or after p, or none().
  const char* next_bad(const char* p) {
    while (bad_index_ < bad_bytes_.size() && text_ + bad_bytes_[bad_index_] < p) ++bad_index_;
    return bad_index_ < bad_bytes_.size() ? text_ + bad_bytes_[bad_index_] : none();
  }

  // The first quote at or after p, or none(); searched again only once passed.
  const char* next_quote(const char* p) {
    if (quote_ < p) {
      const void* q = std::memchr(p, syntax_.quote, static_cast<size_t>(end_ - p));
      quote_ = q ? static_cast<const char*>(q) : none();
    }
    return quote_;
  }

  FieldSpan* row_storage() {
    std::vector<FieldSpan>& fields = out_->fields;
    const auto stride = static_cast<size_t>(out_->layout.stride());
    const size_t base = out_->lines.size() * stride;
    if (base + stride > fields.size()) fields.resize(2 * fields.size() + 64 * stride);
    return fields.data() + base;
  }

  // Restarts the flattened separators at p (a record start) and scans at least kWindow bytes,
  // and on to a newline: a record's fields are then read from seps_ without a branch per field.
  void rescan(const char* p) {
    sep_ = sep_count_ = newline_ = newline_count_ = 0;
    scanned_ = p;
    do scan_block();
    while ((scanned_ - p < static_cast<ptrdiff_t>(kWindow) || newline_count_ == 0) && scanned_ <= end_);
  }

  // Appends the separators of the 64 bytes at scanned_ (up to the sentinel) to seps_ and the
  // index of each newline among them to newlines_.
  void scan_block() {
    uint64_t separators, newlines;
    separator_masks(scanned_, syntax_.delimiter, &separators, &newlines);
    if (end_ - scanned_ < 64) {  // bits up to the sentinel only (unsigned 2 << 63 wraps to 0)
      const uint64_t keep = (uint64_t{2} << (end_ - scanned_)) - 1;
      separators &= keep;
      newlines &= keep;
    }
    if (seps_.size() < sep_count_ + 64) seps_.resize(2 * seps_.size() + 1024);
    if (newlines_.size() < newline_count_ + 64) newlines_.resize(2 * newlines_.size() + 256);
    const auto base = static_cast<uint32_t>(scanned_ - text_);
    const int count = std::popcount(separators);
    // Eight at a time without a branch per separator (simdjson's flattening); the entries past
    // `count` are scratch (countr_zero(0) is 64).
    uint32_t* out = seps_.data() + sep_count_;
    for (uint64_t rest = separators; out < seps_.data() + sep_count_ + count; out += 8)
      for (int k = 0; k < 8; ++k) {
        out[k] = base + static_cast<uint32_t>(std::countr_zero(rest));
        rest &= rest - 1;
      }
    for (; newlines != 0; newlines &= newlines - 1) {
      const uint64_t below = (newlines & -newlines) - 1;
      newlines_[newline_count_++] = static_cast<uint32_t>(sep_count_ + static_cast<size_t>(std::popcount(separators & below)));
    }
    sep_count_ += static_cast<size_t>(count);
    scanned_ += 64;
  }

  // Parses the record (or blank line) at *p when it is a plain one and moves *p past it;
  // false, with *p unchanged, leaves it to general_record(). seps_[sep_] is the first separator
  // after *p; the record's fields end at seps_[sep_] .. seps_[newlines_[newline_]].
  bool fast_record(char** p) {
    char* const start = *p;
    if (newline_ == newline_count_) rescan(start);
    if (newline_ == newline_count_) return false;  // (not reached: the sentinel is a newline)
    const size_t first = sep_, last = newlines_[newline_];
    const char* const s = text_ + seps_[last];
    const size_t nf = last - first + 1;
    if (nf == 1 && (s == start || (s == start + 1 && *start == '\r'))) {  // a blank line
      sep_ = last + 1, ++newline_, ++line_;
      *p = const_cast<char*>(s) + 1;
      return true;
    }
    const int columns = out_->layout.columns();
    if (nf != static_cast<size_t>(columns) || next_quote(start) < s || next_bad(start) < s) return false;
    FieldSpan* row = row_storage();
    const uint32_t* ends = seps_.data() + first;
    const auto record_begin = static_cast<uint32_t>(start - text_);
    const std::vector<int>& kept = out_->layout.kept();
    for (size_t k = 0; k < kept.size(); ++k) {
      const int c = kept[k];
      const uint32_t begin = c == 0 ? record_begin : ends[c - 1] + 1;
      row[k] = {begin, ends[c] - begin};
    }
    const int last_slot = out_->layout.slot(columns - 1);
    if (last_slot >= 0 && row[last_slot].size > 0 && s[-1] == '\r') --row[last_slot].size;
    out_->lines.push_back(line_++);
    sep_ = last + 1, ++newline_;
    *p = const_cast<char*>(s) + 1;
    return true;
  }

  // Parses the record (or blank lines) at *p under every rule of the grammar and moves *p past
  // it: a good record is stored, a malformed one goes to out->issues.
  void general_record(char** at) {
    char* p = *at;
    if (*p == '\n') {
      *at = p + 1, ++line_;
      return;
    }
    if (*p == '\r' && p[1] == '\n') {
      *at = p + 2, ++line_;
      return;
    }
    const char delimiter = syntax_.delimiter, quote = syntax_.quote;
    char* const end = end_;
    const int64_t row_line = line_;
    const char* bad = next_bad(p);
    Issue issue;
    bool ok = true;
    auto flag = [&](int64_t at_line, int64_t column, std::string reason) {
      if (!ok) return;
      ok = false;
      issue.line = at_line;
      issue.column = column;
      issue.reason = std::move(reason);
    };
    record_.clear();
    cursor_.reset(p);
    for (;;) {  // one field per turn; p is at its first byte
      const auto nf = static_cast<int64_t>(record_.size());
      if (*p != quote) {
        char* s = cursor_.next();
        if (bad < s) [[unlikely]] {
          flag(line_, nf + 1, "invalid UTF-8");
          bad = none();
        }
        const auto begin = static_cast<uint32_t>(p - text_);
        uint32_t length = static_cast<uint32_t>(s - p);
        p = s + 1;
        if (*s == delimiter) {
          record_.push_back({begin, length});
          continue;
        }
        if (length > 0 && s[-1] == '\r') --length;
        record_.push_back({begin, length});
        ++line_;
        break;
      }
      // Quoted: copy the content down over the quotes as doubled quotes are found.
      const int64_t field_line = line_;
      char* const content = p + 1;
      char* r = content;
      char* w = content;
      char* closing = nullptr;
      for (;;) {
        char* q = static_cast<char*>(std::memchr(r, quote, static_cast<size_t>(end - r)));
        char* segment_end = q ? q : end;
        if (bad < segment_end) [[unlikely]] {
          flag(line_ + count_newlines(r, bad), nf + 1, "invalid UTF-8");
          bad = none();
        }
        line_ += count_newlines(r, segment_end);
        if (!q) break;
        const bool doubled = q[1] == quote;  // q[1] is at most the sentinel
        const size_t keep = static_cast<size_t>(q - r) + (doubled ? 1 : 0);
        if (w != r) std::memmove(w, r, keep);
        w += keep;
        if (!doubled) {
          closing = q;
          break;
        }
        r = q + 2;
      }
      if (!closing) {
        flag(field_line, nf + 1, "unterminated quoted field (no closing quote before the end of the file)");
        p = end;
        break;
      }
      record_.push_back({static_cast<uint32_t>(content - text_), static_cast<uint32_t>(w - content)});
      p = closing + 1;
      if (*p == delimiter) {
        cursor_.reset(++p);
        continue;
      }
      if (*p == '\n' || (*p == '\r' && p[1] == '\n')) {
        p += *p == '\n' ? 1 : 2;
        ++line_;
        break;
      }
      flag(line_, nf + 1, "unexpected character '" + printable(*p) + "' after a closing quote");
      const size_t record_end = first_record_end(text_, static_cast<size_t>(end - text_), static_cast<size_t>(p - text_), syntax_);
      char* stop = record_end == kNoRecordEnd ? end : text_ + record_end;
      line_ += count_newlines(p, stop);
      p = stop;
      break;
    }
    *at = p;
    const int nf = static_cast<int>(record_.size());
    const int columns = out_->layout.columns();
    if (ok && columns >= 0 && nf != columns) flag(row_line, 0, str_cat("expected ", columns, " fields, found ", nf));
    if (!ok) {
      out_->issues.push_back(std::move(issue));
      return;
    }
    if (columns < 0) {
      out_->layout = Layout(nf);
      out_->columns = nf;
    }
    FieldSpan* row = row_storage();
    for (int c = 0; c < nf; ++c)
      if (const int slot = out_->layout.slot(c); slot >= 0) row[slot] = record_[static_cast<size_t>(c)];
    out_->lines.push_back(row_line);
  }

  char* const text_;
  char* const end_;
  const Syntax& syntax_;
  Rows* const out_;
  SeparatorCursor cursor_;
  int64_t line_;
  std::vector<size_t> bad_bytes_;
  size_t bad_index_ = 0;
  const char* quote_;              // next_quote()'s last answer
  std::vector<FieldSpan> record_;  // general_record()'s fields, all columns
  // The flattened separators (rescan()): offsets of those from a record start on, and the index
  // in seps_ of each newline among them; sep_ and newline_ are the next unread entries.
  static constexpr size_t kWindow = 16 << 10;  // bytes per rescan: the entries stay in L1
  std::vector<uint32_t> seps_, newlines_;
  size_t sep_ = 0, sep_count_ = 0, newline_ = 0, newline_count_ = 0;
  const char* scanned_ = nullptr;  // end of the scanned text
};

}  // namespace

void parse_records(char* text, size_t size, int64_t first_line, const Layout& layout, const Syntax& syntax, Rows* out) {
  KILN_CHECK(size < std::numeric_limits<uint32_t>::max(), "CSV parse buffer of ", size, " bytes");
  out->layout = layout;
  out->columns = layout.columns();
  out->lines.clear();
  out->issues.clear();
  RecordParser(text, size, first_line, syntax, out).run();
}

}  // namespace kiln::io::csv_detail
