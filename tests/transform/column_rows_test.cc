// ColumnRows, and numbers given as numbers: RowScreen and the Transformer must give exactly what
// the numbers' text gives.
#include "transform/column_rows.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <thread>

#include "core/communicator.h"
#include "core/error.h"
#include "io/error_budget.h"
#include "io/number_parse.h"
#include "tests/transform/analyze_text.h"
#include "tests/transform/column_table.h"
#include "transform/dataset_analysis.h"
#include "transform/row_screen.h"
#include "transform/transformer.h"

namespace kiln::transform {
namespace {

using testing::babyweight_spec;
using testing::babyweight_train_files;
using testing::column_rows;
using testing::kBabyweightNumbers;
using testing::read_table;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A ColumnRows of the same rows with every column as text: a numeric column's field() and is_na().
std::unique_ptr<ColumnRows> as_text(const ColumnRows& rows) {
  auto text = std::make_unique<ColumnRows>(rows.rows());
  for (size_t c = 0; c < rows.names().size(); ++c) {
    std::vector<std::string_view> values;
    std::vector<uint8_t> na;
    for (int64_t r = 0; r < rows.rows(); ++r) {
      values.push_back(rows.field(r, static_cast<int>(c)));
      na.push_back(rows.is_na(r, static_cast<int>(c)));
    }
    text->add_text(rows.names()[c], std::move(values), std::move(na));
  }
  return text;
}

TEST(ColumnRows, TextColumnsAreTheCallersViewsWithTheirMissingFlags) {
  const std::string city[] = {"paris", "", "rome"};
  ColumnRows rows(3, "instances");
  EXPECT_EQ(rows.add_text("city", {city[0], city[1], city[2]}, {0, 1, 0}), 0);
  EXPECT_EQ(rows.add_text("tag", {"a", "b", "c"}, {}), 1);  // no flags: nothing missing
  EXPECT_EQ(rows.names(), (std::vector<std::string>{"city", "tag"}));
  EXPECT_EQ(rows.rows(), 3);
  EXPECT_EQ(rows.field(0, 0).data(), city[0].data());  // not copied
  EXPECT_EQ(rows.field(2, 0), "rome");
  EXPECT_FALSE(rows.is_na(0, 0));
  EXPECT_TRUE(rows.is_na(1, 0));
  EXPECT_FALSE(rows.is_na(1, 1));
  EXPECT_EQ(rows.numbers(0), nullptr);
  EXPECT_EQ(rows.where(2, 1), "instances[2].tag");
  std::string_view values[2];
  uint8_t na[2];
  rows.column(0, 1, 3, values, na);
  EXPECT_EQ(values[1], "rome");
  EXPECT_EQ(na[0], 1);
  EXPECT_EQ(na[1], 0);
}

TEST(ColumnRows, NumbersAreReadAsTheyAreAndTheirTextIsTheShortestThatParsesBack) {
  const double x[] = {3.0, 0.1, -2.5e-300, kNaN, kInf, -kInf, 1e15, -0.0, 0x1p53, 0x1p53 + 2, 1e300, 123.456};
  const int64_t n = std::size(x);
  ColumnRows rows(n);
  EXPECT_EQ(rows.add_numbers("x", x), 0);
  EXPECT_EQ(rows.numbers(0), x);
  EXPECT_EQ(rows.where(3, 0), "rows[3].x");
  const std::vector<std::string> want = {"3",    "0.1", "-2.5e-300", "",      "inf",    "-inf",
                                         "1e+15",            "-0",  "9007199254740992", "9007199254740994", "1e+300", "123.456"};
  for (int64_t r = 0; r < n; ++r) {
    EXPECT_EQ(rows.field(r, 0), want[static_cast<size_t>(r)]) << r;
    EXPECT_EQ(rows.is_na(r, 0), r == 3) << r;
  }
  std::vector<std::string_view> values(static_cast<size_t>(n));
  std::vector<uint8_t> na(static_cast<size_t>(n));
  rows.column(0, 0, n, values.data(), na.data());
  for (int64_t r = 0; r < n; ++r) {
    EXPECT_EQ(values[static_cast<size_t>(r)], want[static_cast<size_t>(r)]);
    EXPECT_EQ(na[static_cast<size_t>(r)], r == 3);
  }
}

TEST(ColumnRows, NumberTextParsesBackBitForBit) {
  std::mt19937_64 rng(7);
  std::vector<double> x = {0.0, -0.0, std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::min(),
                           std::numeric_limits<double>::max(), -std::numeric_limits<double>::max(), 0x1p53 - 1};
  while (x.size() < 20000) {
    const double v = std::bit_cast<double>(rng());
    if (std::isfinite(v)) x.push_back(v);
  }
  std::uniform_int_distribution<int64_t> ints(-(int64_t{1} << 53), int64_t{1} << 53);
  for (int i = 0; i < 1000; ++i) x.push_back(static_cast<double>(ints(rng)));
  ColumnRows rows(static_cast<int64_t>(x.size()));
  rows.add_numbers("x", x.data());
  for (size_t r = 0; r < x.size(); ++r) {
    double back = 0;
    ASSERT_TRUE(io::parse_double(rows.field(static_cast<int64_t>(r), 0), &back)) << rows.field(static_cast<int64_t>(r), 0);
    ASSERT_EQ(std::bit_cast<uint64_t>(back), std::bit_cast<uint64_t>(x[r])) << rows.field(static_cast<int64_t>(r), 0);
  }
}

TEST(ColumnRows, NumberTextIsMadeOnceForReadersOnSeveralThreads) {
  std::vector<double> x(10000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i) / 7;
  ColumnRows rows(static_cast<int64_t>(x.size()));
  rows.add_numbers("x", x.data());
  std::vector<std::vector<const char*>> seen(4);
  std::vector<std::thread> threads;
  for (auto& s : seen)
    threads.emplace_back([&rows, &s] {
      for (int64_t r = 0; r < rows.rows(); ++r) s.push_back(rows.field(r, 0).data());
    });
  for (auto& t : threads) t.join();
  for (const auto& s : seen) EXPECT_EQ(s, seen[0]);  // the same text, made once
  EXPECT_EQ(rows.field(7, 0), "1");
}

TEST(ColumnRows, ColumnsNamedTwiceOrOfTheWrongLengthAreErrors) {
  const double x[] = {1, 2};
  ColumnRows rows(2);
  rows.add_numbers("age", x);
  EXPECT_EQ(message_of([&] { rows.add_text("age", {"a", "b"}, {}); }), "rows: column 'age' is given twice");
  EXPECT_EQ(message_of([&] { rows.add_numbers("age", x); }), "rows: column 'age' is given twice");
  EXPECT_EQ(message_of([&] { rows.add_text("city", {"a"}, {}); }), "rows: column 'city' has 1 values for 2 rows");
  EXPECT_EQ(message_of([&] { rows.add_text("city", {"a", "b"}, {0}); }),
            "rows: column 'city' has 1 missing flags for 2 rows");
  EXPECT_EQ(rows.names(), (std::vector<std::string>{"age"}));
}

// Random bit patterns, NaN and infinities as numbers, against their text: the same verdicts,
// reasons and (bit for bit) numbers, for a feature and a REGRESSION label.
TEST(RowScreen, NumbersGiveTheVerdictsAndNumbersOfTheirText) {
  std::mt19937_64 rng(11);
  std::vector<double> x, y;
  for (int i = 0; i < 3000; ++i) {
    const uint64_t kind = rng() % 20;
    auto value = [&] {
      const double v = std::bit_cast<double>(rng());
      return kind == 0 ? kNaN : kind == 1 ? kInf : kind == 2 ? -kInf : std::isfinite(v) ? v : 1.5;
    };
    x.push_back(value());
    y.push_back(kind == 3 ? kNaN : kind == 4 ? -kInf : static_cast<double>(i));
  }
  ColumnRows numbers(static_cast<int64_t>(x.size()));
  numbers.add_numbers("x", x.data());
  numbers.add_numbers("y", y.data());
  const std::unique_ptr<ColumnRows> text = as_text(numbers);
  for (const char* policy : {"", "missing { kind: DROP_ROW }"}) {
    SCOPED_TRACE(policy);
    const FeatureSpec spec = testing::parse_spec(std::string("features { name: 'x' numeric {} ") + policy +
                                                 " } features { name: 'x_b' source: 'x' bucketized { boundaries: [0] } }"
                                                 " label { column: 'y' }");
    const RowScreen screen(spec, {0, 0}, 1);
    RowScreen::Block a, b;
    for (int64_t begin = 0; begin < numbers.rows(); begin += 128) {
      const int64_t end = std::min(begin + 128, numbers.rows());
      screen.screen(numbers, begin, end, &a);
      screen.screen(*text, begin, end, &b);
      ASSERT_EQ(a.verdict, b.verdict);
      for (int64_t k = 0; k < a.size; ++k) {
        if (a.verdict[k] != RowScreen::Verdict::kept) {
          EXPECT_EQ(screen.reason(numbers, a, k), screen.reason(*text, b, k));
          EXPECT_EQ(screen.category(a, k), screen.category(b, k));
          continue;
        }
        for (size_t f = 0; f < 2; ++f) {
          EXPECT_EQ(a.missing[f][k], b.missing[f][k]);
          if (!a.missing[f][k]) {
            EXPECT_EQ(std::bit_cast<uint64_t>(a.number[f][k]), std::bit_cast<uint64_t>(b.number[f][k]));
          }
        }
        EXPECT_EQ(std::bit_cast<uint64_t>(a.label_number[k]), std::bit_cast<uint64_t>(b.label_number[k]));
      }
    }
  }
}

void expect_same_inputs(const ModelInputs& a, const ModelInputs& b) {
  ASSERT_EQ(a.batch, b.batch);
  ASSERT_EQ(a.dense.bytes(), b.dense.bytes());
  EXPECT_EQ(0, std::memcmp(a.dense.raw(), b.dense.raw(), a.dense.bytes())) << "dense inputs differ";
  ASSERT_EQ(a.ids.size(), b.ids.size());
  for (size_t c = 0; c < a.ids.size(); ++c) {
    SCOPED_TRACE(a.ids[c].name);
    EXPECT_EQ(a.ids[c].name, b.ids[c].name);
    EXPECT_EQ(a.ids[c].id_space, b.ids[c].id_space);
    ASSERT_EQ(a.ids[c].offsets.bytes(), b.ids[c].offsets.bytes());
    EXPECT_EQ(0, std::memcmp(a.ids[c].offsets.raw(), b.ids[c].offsets.raw(), a.ids[c].offsets.bytes()));
    const int64_t nnz = a.ids[c].offsets.data<int64_t>()[a.batch];
    EXPECT_EQ(0, std::memcmp(a.ids[c].ids.raw(), b.ids[c].ids.raw(), static_cast<size_t>(nnz) * sizeof(int64_t)));
  }
  ASSERT_EQ(a.label.bytes(), b.label.bytes());
  EXPECT_EQ(0, std::memcmp(a.label.raw(), b.label.raw(), a.label.bytes())) << "labels differ";
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.source_rows, b.source_rows);
}

void expect_same_budget(const io::ErrorBudget& a, const io::ErrorBudget& b) {
  EXPECT_EQ(a.count(), b.count());
  EXPECT_EQ(a.left_out(), b.left_out());
  const std::vector<io::BadRow> fa = a.first(100), fb = b.first(100);
  ASSERT_EQ(fa.size(), fb.size());
  for (size_t i = 0; i < fa.size(); ++i) EXPECT_EQ(io::format_bad_row(fa[i]), io::format_bad_row(fb[i]));
}

// The babyweight rows with some non-finite numbers and missing values written in: numeric
// columns as doubles give the Transformer's inputs, bad and dropped rows of their text.
TEST(ColumnRows, TransformerGivesTheInputsOfTheNumbersText) {
  const FeatureSpec spec = babyweight_spec();
  const std::vector<std::string> files = babyweight_train_files();
  LocalCommunicator local;
  const TransformState state = analyze_dataset(spec, AnalysisOptions{files, 1, false}, local);
  testing::TextTable table = read_table(files, spec);
  auto put = [&](int64_t row, const std::string& column, std::string text) {
    const auto c = static_cast<size_t>(std::find(table.names.begin(), table.names.end(), column) - table.names.begin());
    ASSERT_LT(c, table.names.size());
    table.na[c][static_cast<size_t>(row)] = text.empty();
    table.text[c][static_cast<size_t>(row)] = std::move(text);
  };
  put(3, "mother_age", "inf");
  put(10, "weight_pounds", "-inf");
  put(20, "cigs_per_day", "inf");
  put(30, "father_age", "-inf");
  put(40, "father_age", "");  // DROP_ROW
  put(50, "mother_educ", "");
  put(60, "weight_pounds", "");  // a skipped missing label
  put(300, "prenatal_visits", "55");  // clipped
  const auto numbers = column_rows(table, kBabyweightNumbers);
  const auto text = column_rows(table, {});
  const Transformer transformer(state, numbers->rows->names(), true);
  io::ErrorBudget from_numbers(100), from_text(100);
  const ModelInputs a = transformer.apply(*numbers->rows, &from_numbers);
  const ModelInputs b = transformer.apply(*text->rows, &from_text);
  expect_same_inputs(a, b);
  expect_same_budget(from_numbers, from_text);
  EXPECT_EQ(from_numbers.count(), 4);
  EXPECT_EQ(io::format_bad_row(from_numbers.first(1)[0]),
            "rows[3].mother_age: cannot parse 'inf' as a number for feature 'mother_age'");
  EXPECT_EQ(from_numbers.left_out().count("feature 'father_age_kept' missing (DROP_ROW)"), 1u);
  EXPECT_EQ(from_numbers.left_out().at("missing label"), 1);
  EXPECT_GT(a.batch, 1500);

  // Without a budget (serving) the first unusable row is the error, in the same words.
  EXPECT_EQ(message_of([&] { transformer.apply(*numbers->rows, nullptr); }),
            message_of([&] { transformer.apply(*text->rows, nullptr); }));
}

}  // namespace
}  // namespace kiln::transform
