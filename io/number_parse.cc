#include "io/number_parse.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <system_error>

#if defined(__SSE4_1__)
#include <immintrin.h>
#endif

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

constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// Plain decimals ("-12.5", "3e-4") with at most 19 digits: the mantissa m is exact in uint64;
// when m <= 2^53 and |exponent| <= 22, both m and 10^|exponent| are exact doubles, so one IEEE
// multiply or divide gives the correctly rounded value, the same as from_chars (Clinger's fast
// path). Anything else returns false and goes to from_chars.
bool parse_simple_decimal(const char* p, const char* end, double* out) {
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

// The n <= 8 bytes at p in the low bytes of a word, zeros above, without reading past p + n.
// Two overlapping loads: their shared bytes are equal, so OR-ing them is exact.
inline uint64_t load_word(const char* p, size_t n) {
  auto load = [](const char* q, auto word) {
    std::memcpy(&word, q, sizeof word);
    return static_cast<uint64_t>(word);
  };
  if (n >= 4) return load(p, uint32_t{}) | load(p + n - 4, uint32_t{}) << (8 * (n - 4));
  if (n >= 2) return load(p, uint16_t{}) | load(p + n - 2, uint16_t{}) << (8 * (n - 2));
  return n == 1 ? static_cast<unsigned char>(p[0]) : 0;
}

// Integers "[-]digits" of 1 to 8 digits, the most common CSV numbers (counts, codes, minutes),
// checked and converted in one word (SWAR, as simdjson's eight-digit parse): below 10^8 the value
// is an exact double, so it needs no rounding and agrees with from_chars. False means "not this
// case".
bool parse_short_integer(const char* p, size_t n, double* out) {
  const bool negative = n > 0 && *p == '-';
  p += negative;
  n -= negative;
  if (n == 0 || n > 8) return false;
  // The digits in the high bytes, last digit in byte 7, '0's before them: eight digits.
  const uint64_t word = load_word(p, n) << (8 * (8 - n)) | (0x3030303030303030ull >> 8 >> (8 * (n - 1)));
  if (((word & 0xF0F0F0F0F0F0F0F0ull) | (((word + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) !=
      0x3333333333333333ull)
    return false;
  uint64_t v = word - 0x3030303030303030ull;
  v = v * 10 + (v >> 8);  // pairs of digits
  v = ((v & 0x000000FF000000FFull) * 0x000F424000000064ull + ((v >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull) >> 32;
  const double value = static_cast<double>(static_cast<uint32_t>(v));
  *out = negative ? -value : value;
  return true;
}

#if defined(__SSE4_1__)
// The n <= 16 bytes at p in the low lanes of a vector, zeros above, without reading past p + n.
inline __m128i load_short(const char* p, size_t n) {
  uint64_t low = 0, high = 0;
  if (n >= 8) {
    std::memcpy(&low, p, 8);
    if (n > 8) {
      std::memcpy(&high, p + n - 8, 8);
      high >>= 8 * (16 - n);
    }
  } else {
    low = load_word(p, n);
  }
  return _mm_set_epi64x(static_cast<int64_t>(high), static_cast<int64_t>(low));
}

// The common case of CSV numbers, "[-]digits[.digits]" in at most 16 bytes with at least one
// digit, without a loop over the characters: the bytes are checked, the dot squeezed out and the
// digits converted 16 at a time in SIMD registers. Same rules and result as
// parse_simple_decimal() (Clinger's fast path), as the exact operands of its division: the value
// is *numerator / *divisor, both exact doubles, and IEEE division rounds the quotient correctly
// (and -m / d == -(m / d)). False means "not this case". kPadded: 17 bytes from p are readable
// whatever n is, so the text is one load without branches on its length (the lanes past n are
// never used).
template <bool kPadded>
inline bool short_decimal_operands(const char* p, size_t n, double* numerator, double* divisor) {
  const bool negative = n > 0 && *p == '-';
  p += negative;
  n -= negative;
  if (n == 0 || n > 16) return false;
  const __m128i text = kPadded ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)) : load_short(p, n);
  const __m128i digits = _mm_sub_epi8(text, _mm_set1_epi8('0'));
  const __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(digits, _mm_set1_epi8(9)), digits);
  const uint32_t valid = (uint32_t{1} << n) - 1;
  const uint32_t digit_mask = static_cast<uint32_t>(_mm_movemask_epi8(is_digit)) & valid;
  const uint32_t dot_mask =
      static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(text, _mm_set1_epi8('.')))) & valid;
  // Only digits and at most one dot, and some digit.
  if ((digit_mask | dot_mask) != valid || (dot_mask & (dot_mask - 1)) != 0 || digit_mask == 0) return false;
  // Squeeze out the dot (lane i takes lane i + 1 from the dot on), then right-align the digits in
  // 16 lanes behind zeros (lane i takes lane i - (16 - count), or zero). Lanes past the digits
  // hold garbage and are never taken.
  static constexpr int8_t kAlign[32] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15};
  const int dot = dot_mask ? __builtin_ctz(dot_mask) : 16;
  const int count = static_cast<int>(n) - (dot_mask != 0);  // digits
  const __m128i lanes = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m128i squeeze = _mm_sub_epi8(lanes, _mm_cmpgt_epi8(lanes, _mm_set1_epi8(static_cast<char>(dot - 1))));
  const __m128i packed = _mm_shuffle_epi8(_mm_shuffle_epi8(digits, squeeze),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(kAlign + count)));
  // 16 digits -> 8 two-digit -> 4 four-digit -> 2 eight-digit values.
  const __m128i pairs = _mm_maddubs_epi16(packed, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1));
  const __m128i quads = _mm_madd_epi16(pairs, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
  const __m128i eights = _mm_madd_epi16(_mm_packus_epi32(quads, quads), _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1));
  const uint64_t mantissa = static_cast<uint64_t>(static_cast<uint32_t>(_mm_cvtsi128_si32(eights))) * 100000000 +
                            static_cast<uint32_t>(_mm_extract_epi32(eights, 1));
  const int fraction_digits = dot_mask ? static_cast<int>(n) - 1 - dot : 0;
  if (mantissa > (uint64_t{1} << 53)) return false;
  // The sign as a bit, not a branch: columns of mixed signs would mispredict it.
  *numerator = std::bit_cast<double>(std::bit_cast<uint64_t>(static_cast<double>(mantissa)) | uint64_t{negative} << 63);
  *divisor = kPow10[fraction_digits];
  return true;
}
#endif

}  // namespace

bool parse_double(std::string_view text, double* out) {
  if (parse_short_integer(text.data(), text.size(), out)) return true;
#if defined(__SSE4_1__)
  // Fields with blanks or a '+' fail here (not a digit or dot) and take the general way.
  double numerator, divisor;
  if (short_decimal_operands<false>(text.data(), text.size(), &numerator, &divisor)) {
    *out = numerator / divisor;
    return true;
  }
#endif
  if (!trim(text)) return false;
  const char* end = text.data() + text.size();
  if (parse_simple_decimal(text.data(), end, out)) return true;
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
  if (ec != std::errc() || ptr != end) return false;
  *out = value;
  return true;
}

void parse_padded_doubles(const std::string_view* fields, size_t n, double* out, uint8_t* ok) {
#if defined(__SSE4_1__)
  // Integers too take the short decimal path: one way for the common fields, without the length
  // tests of parse_double(). The divisions are done afterwards, kGroup at a time in vector
  // registers (one at a time, they bound the parse), and the other fields are parsed after that
  // (a call in the first loop would make it reload its vector constants after every field).
  constexpr size_t kGroup = 64;
  double divisor[kGroup];
  for (size_t begin = 0; begin < n; begin += kGroup) {
    const size_t m = std::min(kGroup, n - begin);
    bool all = true;
    for (size_t k = 0; k < m; ++k) {
      const std::string_view f = fields[begin + k];
      const bool parsed = short_decimal_operands<true>(f.data(), f.size(), &out[begin + k], &divisor[k]);
      if (!parsed) {  // left as it is by the division
        out[begin + k] = 0;
        divisor[k] = 1;
      }
      ok[begin + k] = parsed;
      all &= parsed;
    }
    for (size_t k = 0; k < m; ++k) out[begin + k] /= divisor[k];
    if (!all) [[unlikely]]
      for (size_t k = begin; k < begin + m; ++k)
        if (!ok[k]) ok[k] = parse_double(fields[k], &out[k]);
  }
#else
  for (size_t i = 0; i < n; ++i) ok[i] = parse_double(fields[i], &out[i]);
#endif
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
