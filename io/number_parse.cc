#include "io/number_parse.h"

#include <charconv>
#include <system_error>

namespace kiln::io {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// Strips surrounding blanks and one '+' (from_chars takes only '-'). A second sign after the '+'
// is refused here, since from_chars would read "+-1" as -1.
bool trim(std::string_view& text) {
  size_t b = 0, e = text.size();
  while (b < e && is_blank(text[b])) ++b;
  while (e > b && is_blank(text[e - 1])) --e;
  text = text.substr(b, e - b);
  if (!text.empty() && text[0] == '+') {
    text.remove_prefix(1);
    if (!text.empty() && (text[0] == '-' || text[0] == '+')) return false;
  }
  return !text.empty();
}

// Plain decimals ("-12.5", "3e-4") with at most 19 digits: the mantissa m is exact in uint64;
// when m <= 2^53 and |exponent| <= 22, both m and 10^|exponent| are exact doubles, so one IEEE
// multiply or divide gives the correctly rounded value, the same as from_chars (Clinger's fast
// path). Anything else returns false and goes to from_chars.
bool parse_simple_decimal(const char* p, const char* end, double* out) {
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const bool negative = *p == '-';
  if (negative) ++p;
  uint64_t mantissa = 0;
  int digits = 0, exponent = 0;
  auto is_digit = [](char c) { return static_cast<unsigned>(c - '0') < 10; };
  for (; p < end && is_digit(*p); ++p, ++digits) mantissa = mantissa * 10 + static_cast<unsigned>(*p - '0');
  if (p < end && *p == '.') {
    ++p;
    for (; p < end && is_digit(*p); ++p, ++digits, --exponent)
      mantissa = mantissa * 10 + static_cast<unsigned>(*p - '0');
  }
  if (digits == 0 || digits > 19) return false;
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    const bool negative_exponent = p < end && *p == '-';
    if (p < end && (*p == '-' || *p == '+')) ++p;
    int e = 0, exponent_digits = 0;
    for (; p < end && is_digit(*p) && exponent_digits < 4; ++p, ++exponent_digits) e = e * 10 + (*p - '0');
    if (exponent_digits == 0) return false;
    exponent += negative_exponent ? -e : e;
  }
  if (p != end || mantissa > (uint64_t{1} << 53) || exponent < -22 || exponent > 22) return false;
  double value = static_cast<double>(mantissa);
  value = exponent < 0 ? value / kPow10[-exponent] : value * kPow10[exponent];
  *out = negative ? -value : value;
  return true;
}

}  // namespace

bool parse_double(std::string_view text, double* out) {
  if (!trim(text)) return false;
  const char* end = text.data() + text.size();
  if (parse_simple_decimal(text.data(), end, out)) return true;
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
  if (ec != std::errc() || ptr != end) return false;
  *out = value;
  return true;
}

bool parse_int64(std::string_view text, int64_t* out) {
  if (!trim(text)) return false;
  const char* end = text.data() + text.size();
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), end, value, 10);
  if (ec != std::errc() || ptr != end) return false;
  *out = value;
  return true;
}

}  // namespace kiln::io
