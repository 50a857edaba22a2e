// analyze_rows: rows in memory give the TransformState their CSV file gives.
#include <gtest/gtest.h>
#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "core/communicator.h"
#include "core/error.h"
#include "tests/transform/analyze_text.h"
#include "tests/transform/column_table.h"
#include "transform/dataset_analysis.h"

namespace kiln::transform {
namespace {

TransformState analyze_files(const FeatureSpec& spec, const std::vector<std::string>& files) {
  LocalCommunicator local;
  TransformState state = analyze_dataset(spec, AnalysisOptions{files, 2, false}, local);
  state.clear_files();
  return state;
}

// Field by field: rows_left_out is a map, serialized in no fixed order.
void expect_same_state(const TransformState& a, const TransformState& b) {
  std::string differences;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&differences);
  EXPECT_TRUE(d.Compare(a, b)) << differences;
}

TEST(AnalyzeRows, BabyweightColumnsGiveTheStateOfTheirCsvFiles) {
  const FeatureSpec spec = testing::babyweight_spec();
  const std::vector<std::string> files = testing::babyweight_train_files();
  const testing::TextTable table = testing::read_table(files, spec);
  const auto numbers = testing::column_rows(table, testing::kBabyweightNumbers);
  const TransformState state = analyze_rows(spec, *numbers->rows, numbers->rows->names());
  EXPECT_EQ(state.files_size(), 0);
  EXPECT_EQ(state.warnings_size(), 1);  // visits_q's collapsed quantile buckets
  expect_same_state(state, analyze_files(spec, files));
  // All as text too.
  const auto text = testing::column_rows(table, {});
  expect_same_state(analyze_rows(spec, *text->rows, text->rows->names()), state);
}

// A narrow column with many distinct values needs refinement passes for its median and quantile
// boundaries; a BINARY label given as numbers is counted by its values' text.
TEST(AnalyzeRows, QuantileRefinementPassesReadTheRowsAgain) {
  const int64_t n = 20000;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0, 100);
  std::vector<double> x(n), y(n);
  for (int64_t i = 0; i < n; ++i) {
    x[static_cast<size_t>(i)] = i % 97 == 0 ? NAN : 1e6 + normal(rng);
    y[static_cast<size_t>(i)] = i % 89 == 0 ? NAN : static_cast<double>(i % 3 == 0);
  }
  ColumnRows rows(n);
  rows.add_numbers("x", x.data());
  rows.add_numbers("y", y.data());
  const FeatureSpec spec = testing::parse_spec(
      "features { name: 'x' numeric {} missing { kind: MEDIAN } } "
      "features { name: 'x_q' source: 'x' bucketized { num_quantile_buckets: 10 } missing { kind: MEDIAN } } "
      "label { column: 'y' type: BINARY }");
  const TransformState state = analyze_rows(spec, rows, rows.names());

  std::vector<double> kept;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isnan(x[static_cast<size_t>(i)]) && !std::isnan(y[static_cast<size_t>(i)])) kept.push_back(x[static_cast<size_t>(i)]);
  std::sort(kept.begin(), kept.end());
  const auto rank_of = [&](double v) { return std::lower_bound(kept.begin(), kept.end(), v) - kept.begin(); };
  const auto count = static_cast<int64_t>(kept.size());
  EXPECT_EQ(state.features(0).numeric().count(), count);
  // Within the rank error n // 1000: the sketch alone is off by thousands of ranks here.
  EXPECT_LE(std::abs(rank_of(state.features(0).numeric().median()) - (count - 1) / 2), count / 1000);
  ASSERT_EQ(state.features(1).boundaries_size(), 9);
  EXPECT_LE(std::abs(rank_of(state.features(1).boundaries(0)) - (count - 1) / 10), count / 1000);
  EXPECT_EQ(state.label().categorical().vocabulary_size(), 2);

  const std::string path = testing::temp_path("kiln_analyze_rows");
  testing::TextTable table;
  table.names = rows.names();
  table.rows = n;
  for (int c = 0; c < 2; ++c) {
    table.text.emplace_back();
    for (int64_t r = 0; r < n; ++r) table.text.back().emplace_back(rows.field(r, c));
  }
  testing::write_table(table, path);
  const TransformState from_file = analyze_files(spec, {path});
  std::filesystem::remove(path);
  expect_same_state(state, from_file);
}

TEST(AnalyzeRows, ColumnsTheSpecNeedsAreNamed) {
  const double x[] = {1, 2};
  ColumnRows rows(2);
  rows.add_numbers("age", x);
  rows.add_numbers("y", x);
  try {
    analyze_rows(testing::parse_spec("features { name: 'a' source: 'age' numeric {} } "
                                     "features { name: 'c' source: 'city' categorical { vocabulary {} } } label { column: 'y' }"),
                 rows, rows.names());
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "feature 'c': the data (rows) has no column 'city'");
  }
  try {
    analyze_rows(testing::parse_spec("features { name: 'age' numeric {} } label { column: 'weight' }"), rows, rows.names());
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "feature_spec.label: the data (rows) has no column 'weight'");
  }
}

// Non-finite numbers are bad rows, counted against csv.max_bad_rows as the CSV's "inf" is.
TEST(AnalyzeRows, NonFiniteNumbersAreBadRowsWithinTheBudget) {
  FeatureSpec spec = testing::babyweight_spec();
  const std::vector<std::string> files = testing::babyweight_train_files();
  testing::TextTable table = testing::read_table(files, spec);
  const auto column = [&](const std::string& name) {
    return static_cast<size_t>(std::find(table.names.begin(), table.names.end(), name) - table.names.begin());
  };
  table.text[column("mother_age")][3] = "inf";
  table.text[column("weight_pounds")][10] = "-inf";
  const auto numbers = testing::column_rows(table, testing::kBabyweightNumbers);
  const TransformState state = analyze_rows(spec, *numbers->rows, numbers->rows->names());
  EXPECT_EQ(state.bad_rows(), 2);
  EXPECT_EQ(state.rows_left_out().at("feature 'mother_age' not a number"), 1);
  EXPECT_EQ(state.rows_left_out().at("label not a number"), 1);
  const std::string path = testing::temp_path("kiln_analyze_rows_bad");
  testing::write_table(table, path);
  const TransformState from_file = analyze_files(spec, {path});
  std::filesystem::remove(path);
  expect_same_state(state, from_file);

  spec.mutable_csv()->set_max_bad_rows(1);
  try {
    analyze_rows(spec, *numbers->rows, numbers->rows->names());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rows[10].weight_pounds: cannot parse label '-inf' as a number"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("max_bad_rows"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::transform
