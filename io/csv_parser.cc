#include "io/csv_parser.h"

#include <algorithm>
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

// Bit i set when p[i] is the delimiter or '\n', for the 32 bytes at p.
inline uint32_t separator_mask(const char* p, char delimiter) {
#if defined(__AVX2__)
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i hits = _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(delimiter)),
                                       _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\n')));
  return static_cast<uint32_t>(_mm256_movemask_epi8(hits));
#else
  uint32_t mask = 0;
  for (int i = 0; i < 32; ++i) mask |= static_cast<uint32_t>(p[i] == delimiter || p[i] == '\n') << i;
  return mask;
#endif
}

// Yields the separators (delimiters and newlines) after a position, 32 bytes per load; the
// '\n' sentinel after the text guarantees it stops.
class SeparatorCursor {
 public:
  explicit SeparatorCursor(char delimiter) : delimiter_(delimiter) {}
  void reset(const char* p) {
    base_ = p;
    mask_ = separator_mask(p, delimiter_);
  }
  char* next() {
    while (mask_ == 0) {
      base_ += 32;
      mask_ = separator_mask(base_, delimiter_);
    }
    const char* s = base_ + __builtin_ctz(mask_);
    mask_ &= mask_ - 1;
    return const_cast<char*>(s);
  }

 private:
  const char delimiter_;
  const char* base_ = nullptr;
  uint32_t mask_ = 0;
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

inline int64_t count_newlines(const char* begin, const char* end) { return std::count(begin, end, '\n'); }

}  // namespace

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

void parse_records(char* text, size_t size, int64_t first_line, int columns, const Syntax& syntax, Rows* out) {
  KILN_CHECK(size < std::numeric_limits<uint32_t>::max(), "CSV parse buffer of ", size, " bytes");
  out->columns = columns;
  out->lines.clear();
  out->issues.clear();
  std::vector<FieldSpan>& fields = out->fields;

  char* const end = text + size;
  *end = '\n';  // sentinel: the separator scan needs no bounds check
  const char delimiter = syntax.delimiter, quote = syntax.quote;

  // Invalid UTF-8 is found for the whole text at once (an ASCII text takes one fast pass); the
  // loop below then asks, per field, whether the next bad byte lies inside it.
  std::vector<size_t> bad_bytes;
  if (syntax.validate_utf8) find_invalid_utf8(text, size, &bad_bytes);
  const char* const none = end + 1;
  size_t bad_index = 0;
  auto next_bad_at_or_after = [&](const char* p) {
    while (bad_index < bad_bytes.size() && text + bad_bytes[bad_index] < p) ++bad_index;
    return bad_index < bad_bytes.size() ? text + bad_bytes[bad_index] : none;
  };

  SeparatorCursor cursor(delimiter);
  size_t n = 0;  // fields stored
  int64_t line = first_line;
  char* p = text;
  while (p < end) {
    if (*p == '\n') {
      ++p, ++line;
      continue;
    }
    if (*p == '\r' && p[1] == '\n') {
      p += 2, ++line;
      continue;
    }
    const int64_t row_line = line;
    const size_t row_first = n;
    const char* bad = next_bad_at_or_after(p);
    Issue issue;
    bool ok = true;
    auto flag = [&](int64_t at_line, int64_t column, std::string reason) {
      if (!ok) return;
      ok = false;
      issue.line = at_line;
      issue.column = column;
      issue.reason = std::move(reason);
    };
    int nf = 0;
    cursor.reset(p);
    for (;;) {  // one field per turn; p is at its first byte
      if (n == fields.size()) fields.resize(fields.size() * 2 + 1024);
      if (*p != quote) {
        char* s = cursor.next();
        if (bad < s) [[unlikely]] {
          flag(line, nf + 1, "invalid UTF-8");
          bad = none;
        }
        uint32_t length = static_cast<uint32_t>(s - p);
        fields[n++] = {static_cast<uint32_t>(p - text), length};
        ++nf;
        p = s + 1;
        if (*s == delimiter) continue;
        if (length > 0 && s[-1] == '\r') --fields[n - 1].size;
        ++line;
        break;
      }
      // Quoted: copy the content down over the quotes as doubled quotes are found.
      const int64_t field_line = line;
      char* const content = p + 1;
      char* r = content;
      char* w = content;
      char* closing = nullptr;
      for (;;) {
        char* q = static_cast<char*>(std::memchr(r, quote, static_cast<size_t>(end - r)));
        char* segment_end = q ? q : end;
        if (bad < segment_end) [[unlikely]] {
          flag(line + count_newlines(r, bad), nf + 1, "invalid UTF-8");
          bad = none;
        }
        line += count_newlines(r, segment_end);
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
      fields[n++] = {static_cast<uint32_t>(content - text), static_cast<uint32_t>(w - content)};
      ++nf;
      p = closing + 1;
      if (*p == delimiter) {
        cursor.reset(++p);
        continue;
      }
      if (*p == '\n' || (*p == '\r' && p[1] == '\n')) {
        p += *p == '\n' ? 1 : 2;
        ++line;
        break;
      }
      flag(line, nf, "unexpected character '" + printable(*p) + "' after a closing quote");
      const size_t record_end = first_record_end(text, size, static_cast<size_t>(p - text), syntax);
      char* stop = record_end == kNoRecordEnd ? end : text + record_end;
      line += count_newlines(p, stop);
      p = stop;
      break;
    }
    if (ok && columns >= 0 && nf != columns)
      flag(row_line, 0, str_cat("expected ", columns, " fields, found ", nf));
    if (!ok) {
      n = row_first;
      out->issues.push_back(std::move(issue));
      continue;
    }
    if (columns < 0) columns = out->columns = nf;
    out->lines.push_back(row_line);
  }
}

}  // namespace kiln::io::csv_detail
