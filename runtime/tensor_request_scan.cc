#include "runtime/tensor_request_scan.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

namespace kiln::runtime {

namespace {

struct Scanner {
  const char* p;
  const char* end;

  void ws() {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  }
  bool eat(char c) {
    ws();
    if (p == end || *p != c) return false;
    ++p;
    return true;
  }
  bool digit() const { return p < end && *p >= '0' && *p <= '9'; }

  // The run of 1-7 digits at p, read eight bytes at a time without a branch per digit (pixel
  // values of 1-3 digits made the digit loop's exit a misprediction per number): its length, and
  // its value in `whole`. 0 when there are fewer than eight bytes left or the run is not 1-7
  // digits long; the caller then reads it digit by digit.
  int short_digit_run(uint64_t& whole) const {
    if (end - p < 8) return 0;
    uint64_t chunk;
    std::memcpy(&chunk, p, 8);
    const uint64_t d = chunk - 0x3030303030303030ULL;
    // Bytes that are not digits: below '0' (the subtraction wraps or borrows: bit 7 set) or above
    // '9' (adding 0x76 carries into bit 7). A borrow only reaches bytes after a non-digit.
    const uint64_t not_digit = (d | (d + 0x7676767676767676ULL)) & 0x8080808080808080ULL;
    const int n = not_digit ? std::countr_zero(not_digit) / 8 : 8;
    if (n == 0 || n == 8) return 0;
    // The digits to the top n bytes, zeros below them (leading zeros), then the eight-digit SWAR
    // sum: pairs, then fours, then all.
    uint64_t v = d << (8 * (8 - n));
    v = (v * 10) + (v >> 8);
    v = (((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
         (((v >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
    whole = v;
    return n;
  }

  // One JSON number (RFC 8259 grammar) as the general parser reads it: integers as int64 then
  // double, others correctly rounded to double; then float, which must be finite. "-0" and
  // integers of more than 18 digits are left to the general parser (its types differ there).
  bool number(float& f) {
    const char* start = p;
    const bool negative = p < end && *p == '-';
    if (negative) ++p;
    if (!digit()) return false;
    uint64_t whole = 0;
    int digits = 0;
    if (*p == '0') {
      ++p;
      digits = 1;
      if (digit()) return false;  // a leading zero
    } else if (const int n = short_digit_run(whole)) {
      p += n;
      digits = n;
    } else {
      for (; digit(); ++p, ++digits) whole = whole * 10 + static_cast<uint64_t>(*p - '0');
    }
    bool integer = true;
    if (p < end && *p == '.') {
      integer = false;
      ++p;
      if (!digit()) return false;
      while (digit()) ++p;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
      integer = false;
      ++p;
      if (p < end && (*p == '+' || *p == '-')) ++p;
      if (!digit()) return false;
      while (digit()) ++p;
    }
    double d;
    if (integer) {
      if (digits > 18 || (negative && whole == 0)) return false;
      const int64_t v = negative ? -static_cast<int64_t>(whole) : static_cast<int64_t>(whole);
      d = static_cast<double>(v);
    } else {
      auto [ptr, ec] = std::from_chars(start, p, d);
      if (ec != std::errc() || ptr != p) return false;
    }
    f = static_cast<float>(d);
    return std::isfinite(f);
  }

  // Numbers and arrays of them, nested up to `depth_left` more levels, written to out[count..]
  // while count < limit. Plain stores to a sized array, no push_back: nothing opaque in the loop,
  // so the cursor and the count stay in registers.
  bool values(float* out, size_t& count, size_t limit, int depth_left) {
    if (!eat('[')) return false;
    if (depth_left <= 0) return false;
    if (eat(']')) return true;
    do {
      ws();
      if (p == end) return false;
      if (*p == '[') {
        if (!values(out, count, limit, depth_left - 1)) return false;
      } else {
        float f;
        if (count >= limit || !number(f)) return false;
        out[count++] = f;
      }
    } while (eat(','));
    return eat(']');
  }
};

}  // namespace

bool scan_plain_tensor_instances(std::string_view body, int64_t elements, const RequestLimits& limits,
                                 std::vector<float>& out, int64_t& count) {
  Scanner s{body.data(), body.data() + body.size()};
  constexpr std::string_view kKey = "\"instances\"";
  if (!s.eat('{')) return false;
  s.ws();
  if (static_cast<size_t>(s.end - s.p) < kKey.size() || std::string_view(s.p, kKey.size()) != kKey) return false;
  s.p += kKey.size();
  if (!s.eat(':') || !s.eat('[')) return false;
  const size_t before = out.size();
  const size_t n = static_cast<size_t>(elements);
  int64_t rows = 0;
  bool ok = true;
  // Depth: the object, the instances array, then each instance's arrays (one level short of the
  // limit: the general parser decides at the limit).
  do {
    if (++rows > limits.max_rows) {
      ok = false;
      break;
    }
    const size_t start = out.size();
    out.resize(start + n);
    size_t count = 0;
    if (!s.values(out.data() + start, count, n, limits.max_depth - 3) || count != n) {
      ok = false;
      break;
    }
  } while (s.eat(','));
  ok = ok && s.eat(']') && s.eat('}');
  if (ok) {
    s.ws();
    ok = s.p == s.end;
  }
  if (!ok) {
    out.resize(before);
    return false;
  }
  count = rows;
  return true;
}

}  // namespace kiln::runtime
