// number_parse, ErrorBudget and expand_file_patterns: the small pieces around the CSV reader.
#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "core/error.h"
#include "io/error_budget.h"
#include "io/file_pattern.h"
#include "io/number_parse.h"
#include "tests/io/temp_dir.h"

namespace kiln::io {
namespace {

using testing::TempDir;

TEST(NumberParse, DoubleAcceptsWholeNumbers) {
  struct Case {
    const char* text;
    double value;
  };
  for (const Case& c : {Case{"0", 0.0}, Case{"1.5", 1.5}, Case{"-2", -2.0}, Case{"+3.25", 3.25}, Case{"  7  ", 7.0},
                        Case{"\t8\t", 8.0}, Case{"1e3", 1000.0}, Case{"-1.5E-2", -0.015}, Case{".5", 0.5},
                        Case{"5.", 5.0}, Case{" +0.125", 0.125}}) {
    double out = -99;
    EXPECT_TRUE(parse_double(c.text, &out)) << c.text;
    EXPECT_EQ(out, c.value) << c.text;
  }
  double out = 0;
  EXPECT_TRUE(parse_double("inf", &out));
  EXPECT_TRUE(std::isinf(out) && out > 0);
  EXPECT_TRUE(parse_double("-Infinity", &out));
  EXPECT_TRUE(std::isinf(out) && out < 0);
  EXPECT_TRUE(parse_double("nan", &out));
  EXPECT_TRUE(std::isnan(out));
  EXPECT_TRUE(parse_double("NaN", &out));
  EXPECT_TRUE(std::isnan(out));
}

TEST(NumberParse, DoubleRejectsAnythingElse) {
  for (const char* text :
       {"",  " ",    "abc", "1.5x", "x1.5",  "1,5",   "1 2",    "--1", "+-1",  "-+1", "++1",  "+",
        "-", "0x10", "1e",  "1e+",  "1.2.3", "1e999", "-1e999", "in",  "nanx", "1\n", "\"1\""}) {
    double out = 42;
    EXPECT_FALSE(parse_double(text, &out)) << "'" << text << "'";
    EXPECT_EQ(out, 42) << "output written on failure for '" << text << "'";
  }
}

// parse_double takes a shortcut for short plain decimals; it must agree with from_chars bit for bit.
TEST(NumberParse, DoubleShortcutMatchesFromChars) {
  std::mt19937_64 rng(99);
  for (int i = 0; i < 200000; ++i) {
    std::string text;
    if (rng() % 4 == 0) text += '-';
    const int int_digits = static_cast<int>(rng() % 19), frac_digits = static_cast<int>(rng() % 19);
    for (int d = 0; d < int_digits; ++d) text += static_cast<char>('0' + rng() % 10);
    if (frac_digits || rng() % 2) text += '.';
    for (int d = 0; d < frac_digits; ++d) text += static_cast<char>('0' + rng() % 10);
    if (rng() % 3 == 0)
      text += (rng() % 2 ? "e" : "E") + std::string(rng() % 2 ? "-" : "") + std::to_string(rng() % 40);
    double expected = 0, got = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), expected);
    const bool valid = ec == std::errc() && ptr == text.data() + text.size();
    ASSERT_EQ(parse_double(text, &got), valid) << text;
    if (valid) {
      ASSERT_EQ(std::memcmp(&got, &expected, sizeof got), 0) << text << " " << got << " vs " << expected;
    }
  }
  double z = 1;
  ASSERT_TRUE(parse_double("-0.0", &z));
  EXPECT_TRUE(std::signbit(z));
}

// Integers of up to 8 digits take a word-at-a-time shortcut: every length, sign, leading zeros,
// and bytes just outside the digit range must agree with from_chars.
TEST(NumberParse, ShortIntegersMatchFromChars) {
  std::mt19937_64 rng(7);
  const std::string alphabet = "0123456789/:-+. eE\x80\xff";
  for (int i = 0; i < 300000; ++i) {
    std::string text;
    const int length = 1 + static_cast<int>(rng() % 10);
    for (int k = 0; k < length; ++k)
      text += rng() % 8 ? static_cast<char>('0' + rng() % 10) : alphabet[rng() % alphabet.size()];
    double expected = 0, got = 0;
    std::string_view t = text;
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    if (t.size() > 1 && t[0] == '+' && t[1] != '-' && t[1] != '+') t.remove_prefix(1);
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), expected);
    const bool valid = !t.empty() && ec == std::errc() && ptr == t.data() + t.size() && std::isfinite(expected);
    if (!valid) continue;  // the grammar of the rest is DoubleRejectsAnythingElse's
    ASSERT_TRUE(parse_double(text, &got)) << text;
    ASSERT_EQ(std::memcmp(&got, &expected, sizeof got), 0) << text;
  }
  for (const char* text : {"12:30", "1/2", "12-3", "0x1", "1 2", "-", "--1"}) {
    double out = 42;
    EXPECT_FALSE(parse_double(text, &out)) << text;
  }
  double out = 0;
  EXPECT_TRUE(parse_double("-00000000", &out));
  EXPECT_TRUE(std::signbit(out) && out == 0);
  EXPECT_TRUE(parse_double("99999999", &out));
  EXPECT_EQ(out, 99999999.0);
  EXPECT_TRUE(parse_double("-123456789", &out));  // nine digits: the general path
  EXPECT_EQ(out, -123456789.0);
}

// A field is a view into a larger buffer: the bytes around it (here digits and dots) must not
// change its value, whatever its length.
TEST(NumberParse, DoubleReadsOnlyItsField) {
  const std::string buffer = "98765.4321098765432109876.5432109";
  for (size_t begin = 0; begin < buffer.size(); ++begin) {
    for (size_t n = 0; begin + n <= buffer.size(); ++n) {
      const std::string field = buffer.substr(begin, n);  // a copy with nothing after it
      double from_view = 1, from_copy = 2;
      const bool ok_view = parse_double(std::string_view(buffer).substr(begin, n), &from_view);
      const bool ok_copy = parse_double(field, &from_copy);
      ASSERT_EQ(ok_view, ok_copy) << field;
      if (!ok_view) continue;
      ASSERT_EQ(std::memcmp(&from_view, &from_copy, sizeof from_view), 0) << field;
    }
  }
  double out = 0;
  EXPECT_TRUE(parse_double("1234567890123456", &out));  // 16 digits
  EXPECT_EQ(out, 1234567890123456.0);
  EXPECT_TRUE(parse_double("-9007199254740993", &out));  // beyond 2^53: the general path rounds it
  EXPECT_EQ(out, -9007199254740992.0);
  EXPECT_TRUE(parse_double("0.000000000000001", &out));
  EXPECT_EQ(out, 1e-15);
}

// The reference for parse_padded_doubles: std::from_chars over the whole field, after the
// blanks and the one '+' that parse_double strips.
bool from_chars_reference(std::string_view t, double* out) {
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  if (!t.empty() && t[0] == '+') {
    t.remove_prefix(1);
    if (!t.empty() && (t[0] == '-' || t[0] == '+')) return false;
  }
  if (t.empty()) return false;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), *out);
  return ec == std::errc() && ptr == t.data() + t.size();
}

// parse_padded_doubles reads 16 bytes of every field whatever its length, and divides in vector
// registers: its results must be from_chars's bit for bit, for random decimals of every length
// and sign (with the buffer's next bytes digits, dots or exponents) and for the edge cases.
TEST(NumberParse, PaddedDoublesMatchFromChars) {
  std::vector<std::string> texts = {
      "0", "-0", "+0", "-0.0", "0.000", "1e308", "-1e308", "1.7976931348623157e308", "1.7976931348623159e308",
      "1e309", "4.9e-324", "5e-324", "2e-324", "2.2250738585072014e-308", "2.2250738585072011e-308", "1e-400",
      "9007199254740992", "9007199254740993", "-9007199254740993", "9007199254740992.5", "1234567890123456",
      "12345678901234567", "0.1234567890123456", "1234567.890123456", "00000000000000001", "000123.4500",
      "-000.000001", "1e22", "1e23", "1.5e-22", "123456789012345678901234567890", "0.30000000000000004",
      "3.141592653589793238462643383279", "+1.5", "++1", "+-1", " 7", "7 ", "\t-2.5\t", "1.", ".5", "-.5",
      ".", "-", "", "NA", "nan", "-inf", "Infinity", "1e", "1e+", "1.2.3", "1,5", "0x10", "12:30", "1-2", "--1",
      "99999999", "-99999999", "100000000", "18446744073709551616", "9999999999999999", "-9999999999999999.9"};
  std::mt19937_64 rng(2024);
  for (int i = 0; i < 300000; ++i) {
    std::string text;
    if (rng() % 3 == 0) text += '-';
    const int int_digits = static_cast<int>(rng() % 12), frac_digits = static_cast<int>(rng() % (rng() % 4 ? 9 : 22));
    if (rng() % 8 == 0) text += std::string(rng() % 4, '0');  // leading zeros
    for (int d = 0; d < int_digits; ++d) text += static_cast<char>('0' + rng() % 10);
    if (frac_digits || rng() % 4 == 0) text += '.';
    for (int d = 0; d < frac_digits; ++d) text += static_cast<char>('0' + rng() % 10);
    if (rng() % 10 == 0) text += (rng() % 2 ? "e" : "E") + std::string(rng() % 2 ? "-" : "+") + std::to_string(rng() % 330);
    texts.push_back(std::move(text));
  }
  // One buffer, each field followed by bytes that would change its value if they were read.
  std::string buffer;
  std::vector<std::pair<size_t, size_t>> spans;
  const std::string junk = "0123456789.eE-+";
  for (const std::string& t : texts) {
    spans.emplace_back(buffer.size(), t.size());
    buffer += t;
    for (int k = static_cast<int>(rng() % 3); k >= 0; --k) buffer += junk[rng() % junk.size()];
  }
  buffer += std::string(64, '7');  // the padding the function may read, never use
  std::vector<std::string_view> fields;
  for (const auto& [begin, size] : spans) fields.emplace_back(buffer.data() + begin, size);
  std::vector<double> out(fields.size());
  std::vector<uint8_t> ok(fields.size());
  parse_padded_doubles(fields.data(), fields.size(), out.data(), ok.data());
  size_t parsed = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    double expected = 0;
    const bool valid = from_chars_reference(texts[i], &expected);
    ASSERT_EQ(static_cast<bool>(ok[i]), valid) << "'" << texts[i] << "'";
    if (!valid) continue;
    ++parsed;
    ASSERT_EQ(std::bit_cast<uint64_t>(out[i]), std::bit_cast<uint64_t>(expected)) << texts[i] << " " << out[i] << " vs " << expected;
  }
  EXPECT_GT(parsed, fields.size() * 9 / 10);
}

TEST(NumberParse, Int64) {
  int64_t out = 0;
  EXPECT_TRUE(parse_int64("42", &out));
  EXPECT_EQ(out, 42);
  EXPECT_TRUE(parse_int64(" -17 ", &out));
  EXPECT_EQ(out, -17);
  EXPECT_TRUE(parse_int64("+5", &out));
  EXPECT_EQ(out, 5);
  EXPECT_TRUE(parse_int64("9223372036854775807", &out));
  EXPECT_EQ(out, std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(parse_int64("-9223372036854775808", &out));
  EXPECT_EQ(out, std::numeric_limits<int64_t>::min());
  for (const char* text : {"", "  ", "1.0", "1e3", "9223372036854775808", "-9223372036854775809", "12a", "a12",
                           "+-1", "0x1f", "1 000", "nan", "inf"}) {
    out = 7;
    EXPECT_FALSE(parse_int64(text, &out)) << "'" << text << "'";
    EXPECT_EQ(out, 7);
  }
}

TEST(ErrorBudget, CountsUpToTheBudgetThenThrowsWithLocation) {
  ErrorBudget budget(2);
  budget.add({"a.csv", 3, 2, "first"});
  budget.add({"a.csv", 5, 0, "second"});
  EXPECT_EQ(budget.count(), 2);
  try {
    budget.add({"b.csv", 9, 4, "third"});
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("b.csv:9:4: third"), std::string::npos) << what;
    EXPECT_NE(what.find("more than 2 malformed rows"), std::string::npos) << what;
    EXPECT_NE(what.find("csv.max_bad_rows"), std::string::npos) << what;
  }
  EXPECT_EQ(budget.count(), 3);
  std::vector<BadRow> first = budget.first(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].reason, "first");
  EXPECT_EQ(first[1].line, 5);
  EXPECT_EQ(budget.first().size(), 3u);
}

TEST(ErrorBudget, ZeroBudgetFailsOnFirstRowNamingTheSetting) {
  ErrorBudget budget(0);
  try {
    budget.add({"x.csv", 1, 0, "whole row"});
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "x.csv:1: whole row (csv.max_bad_rows is 0; set it to skip malformed rows, -1 for no limit)");
  }
}

TEST(ErrorBudget, CountsRowsLeftOutByCategory) {
  ErrorBudget budget(5);
  budget.add({"a.csv", 1, 0, "broken"});
  budget.add({"a.csv", 2, 1, "nan"}, "feature 'x' not a number");
  budget.skip("missing label");
  budget.skip("missing label");
  EXPECT_EQ(budget.count(), 2);  // skipped rows are not malformed
  EXPECT_EQ(budget.left_out(), (std::map<std::string, int64_t>{
                                   {"feature 'x' not a number", 1}, {"malformed CSV row", 1}, {"missing label", 2}}));
  EXPECT_EQ(describe_left_out(budget.left_out()),
            "4 rows left out: 1 feature 'x' not a number, 1 malformed CSV row, 2 missing label");
  EXPECT_EQ(describe_left_out({}), "no rows left out");
}

TEST(ErrorBudget, NegativeBudgetNeverThrows) {
  ErrorBudget budget(-1);
  for (int i = 0; i < 1000; ++i) budget.add({"f", i + 1, 1, "r"});
  EXPECT_EQ(budget.count(), 1000);
  EXPECT_EQ(budget.first(5).size(), 5u);
}

TEST(ErrorBudget, LocationFormats) {
  EXPECT_EQ(format_bad_row({"f.csv", 2, 3, "why"}), "f.csv:2:3: why");
  EXPECT_EQ(format_bad_row({"f.csv", 2, 0, "why"}), "f.csv:2: why");
  EXPECT_EQ(format_bad_row({"instances[3].age", 0, 0, "why"}), "instances[3].age: why");
}

TEST(ErrorBudget, ThreadSafeCount) {
  ErrorBudget budget(-1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2500; ++i) budget.add({"f", 1, 1, "r"});
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(budget.count(), 10000);
}

void touch(const std::string& path) { std::ofstream(path) << "x\n"; }

TEST(FilePattern, ExpandsSortedAndDeduplicated) {
  TempDir dir;
  for (const char* name : {"train-2.csv", "train-0.csv", "train-1.csv", "test-0.csv", "train-1.csv.gz"})
    touch(dir.file(name));
  std::filesystem::create_directory(dir.file("train-9.csv"));  // a directory is not a file
  std::vector<std::string> files =
      expand_file_patterns({dir.file("train-*.csv"), dir.file("train-1.csv"), dir.file("*.gz")});
  EXPECT_EQ(files, (std::vector<std::string>{dir.file("train-0.csv"), dir.file("train-1.csv"),
                                             dir.file("train-1.csv.gz"), dir.file("train-2.csv")}));
  EXPECT_EQ(expand_file_patterns({dir.file("test-?.csv")}), std::vector<std::string>{dir.file("test-0.csv")});
  EXPECT_TRUE(expand_file_patterns({}).empty());
}

TEST(FilePattern, LiteralNameWithGlobCharacters) {
  TempDir dir;
  touch(dir.file("run[1].csv"));
  EXPECT_EQ(expand_file_patterns({dir.file("run[1].csv")}), std::vector<std::string>{dir.file("run[1].csv")});
}

TEST(FilePattern, PatternMatchingNothingIsAnErrorNamingIt) {
  TempDir dir;
  touch(dir.file("a.csv"));
  const std::string pattern = dir.file("nothing-*.csv");
  try {
    expand_file_patterns({dir.file("a.csv"), pattern});
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(pattern), std::string::npos) << e.what();
  }
  EXPECT_THROW(expand_file_patterns({dir.file("missing.csv")}), Error);
  std::filesystem::create_directory(dir.file("sub"));
  EXPECT_THROW(expand_file_patterns({dir.file("su*")}), Error);  // directories only
}

}  // namespace
}  // namespace kiln::io
