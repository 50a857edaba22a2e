// The Transformer's column kinds and policies on a small CSV analyzed for real.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/communicator.h"
#include "core/error.h"
#include "io/error_budget.h"
#include "transform/dataset_analysis.h"
#include "transform/transformer.h"

namespace kiln::transform {
namespace {

// Rows given as strings; "NA" is missing.
class VectorRows final : public RawRows {
 public:
  VectorRows(std::vector<std::string> columns, std::vector<std::vector<std::string>> rows)
      : columns_(std::move(columns)), rows_(std::move(rows)) {}
  int64_t rows() const override { return static_cast<int64_t>(rows_.size()); }
  std::string_view field(int64_t r, int c) const override { return rows_[r][c]; }
  bool is_na(int64_t r, int c) const override { return rows_[r][c] == "NA" || rows_[r][c].empty(); }
  std::string where(int64_t r, int c) const override { return "instances[" + std::to_string(r) + "]." + columns_[c]; }
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;
};

const char* kCsv =
    "age,city,tags,score,label,key\n"
    "10,paris,a b,1.5,yes,k1\n"
    "20,paris,b,2.5,no,k2\n"
    "30,rome,,3.5,yes,k3\n"
    "40,oslo,a c,NA,no,k4\n"
    "NA,paris,c,4.5,yes,k5\n";

TransformState analyze_text(const std::string& spec_text) {
  FeatureSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(spec_text, &spec)) << spec_text;
  // One file per process: ctest runs this file's tests as concurrent processes.
  std::string path =
      (std::filesystem::temp_directory_path() / ("kiln_transformer_test." + std::to_string(::getpid()) + ".csv")).string();
  std::ofstream(path) << kCsv;
  LocalCommunicator local;
  AnalysisOptions opts{{path}, 1, false};
  TransformState state = analyze_dataset(spec, opts, local);
  std::filesystem::remove(path);
  return state;
}

const std::vector<std::string> kColumns{"age", "city", "tags", "score", "label", "key"};

TEST(Transformer, NumericScalingMissingPoliciesAndIndicator) {
  TransformState s = analyze_text(
      "features { name: 'age' numeric { scaling: Z_SCORE } missing { kind: MEAN indicator: true } } "
      "features { name: 'score' numeric { scaling: MIN_MAX clip_max: 4 } missing { kind: MEDIAN } } "
      "features { name: 'age_log' source: 'age' numeric { scaling: LOG1P } missing { default_value: 5 } } "
      "label { column: 'label' type: BINARY positive_values: 'yes' } key_column: 'key'");
  EXPECT_DOUBLE_EQ(s.features(0).numeric().mean(), 25.0);
  EXPECT_EQ(s.features(0).numeric().missing(), 1);
  EXPECT_EQ(s.dense_width(), 4);
  Transformer t(s, kColumns, true);
  VectorRows rows(kColumns, {{"40", "x", "", "NA", "yes", "kA"}, {"NA", "x", "", "9", "no", "kB"}});
  ModelInputs in = t.apply(rows, nullptr);
  ASSERT_EQ(in.batch, 2);
  const float* d = in.dense.data<float>();
  double sd = s.features(0).numeric().stddev();
  EXPECT_FLOAT_EQ(d[0], static_cast<float>((40 - 25) / sd));  // z-score
  EXPECT_EQ(d[1], 0.0f);                                      // age present
  double median = s.features(1).numeric().median();           // ~2.5 within the sketch's 0.5%
  EXPECT_NEAR(median, 2.5, 0.02);
  EXPECT_FLOAT_EQ(d[2], static_cast<float>((median - 1.5) / (4.5 - 1.5)));  // MEDIAN then min-max
  EXPECT_FLOAT_EQ(d[3], static_cast<float>(std::log1p(40.0)));
  EXPECT_FLOAT_EQ(d[4], 0.0f);   // missing age -> mean -> z-score 0
  EXPECT_EQ(d[5], 1.0f);         // indicator
  EXPECT_FLOAT_EQ(d[6], static_cast<float>((4 - 1.5) / 3.0));  // 9 clipped to 4
  EXPECT_FLOAT_EQ(d[7], static_cast<float>(std::log1p(5.0)));  // default_value
  EXPECT_EQ(in.label.data<float>()[0], 1.0f);
  EXPECT_EQ(in.label.data<float>()[1], 0.0f);
  EXPECT_EQ(in.keys, (std::vector<std::string>{"kA", "kB"}));
}

TEST(Transformer, VocabularyOovHashMultiValuedCrossAndOneHot) {
  TransformState s = analyze_text(
      "features { name: 'city' categorical { vocabulary { num_oov_buckets: 2 } } } "
      "features { name: 'city_top' source: 'city' categorical { vocabulary { top_k: 1 } } output: ONE_HOT } "
      "features { name: 'tags' categorical { vocabulary {} multi_value_delimiter: ' ' } } "
      "features { name: 'city_h' source: 'city' categorical { hash { buckets: 7 } } } "
      "features { name: 'age_b' source: 'age' bucketized { boundaries: [15, 35] } } "
      "features { name: 'cross' crossed { columns: ['city', 'age_b'] hash_buckets: 11 } } "
      "label { column: 'label' type: MULTICLASS }");
  // Frequency order, ties in byte order: paris(3), oslo(1), rome(1).
  const auto& v = s.features(0).categorical();
  ASSERT_EQ(v.vocabulary_size(), 3);
  EXPECT_EQ(v.vocabulary(0), "paris");
  EXPECT_EQ(v.vocabulary(1), "oslo");
  EXPECT_EQ(s.features(0).id_space(), 5);
  EXPECT_EQ(s.features(1).id_space(), 2);  // top_k 1 + one OOV bucket
  EXPECT_EQ(s.features(2).categorical().vocabulary_size(), 3);  // a, b, c
  EXPECT_EQ(s.features(4).id_space(), 3);
  EXPECT_EQ(s.dense_width(), 2);  // the one-hot block
  EXPECT_EQ(s.label().categorical().vocabulary(0), "no");  // classes in byte order
  Transformer t(s, kColumns, true);
  VectorRows rows(kColumns, {{"20", "paris", "a c", "1", "yes", ""},
                             {"50", "tokyo", "", "1", "no", ""},
                             {"NA", "NA", "b a b", "1", "no", ""}});
  ModelInputs in = t.apply(rows, nullptr);
  ASSERT_EQ(in.ids.size(), 5u);
  const auto ids = [&](int c) {
    return std::vector<int64_t>(in.ids[c].ids.data<int64_t>(),
                                in.ids[c].ids.data<int64_t>() + in.ids[c].offsets.data<int64_t>()[in.batch]);
  };
  const auto offs = [&](int c) {
    return std::vector<int64_t>(in.ids[c].offsets.data<int64_t>(), in.ids[c].offsets.data<int64_t>() + in.batch + 1);
  };
  std::vector<int64_t> city = ids(0);
  EXPECT_EQ(city[0], 0);                        // paris
  EXPECT_TRUE(city[1] == 3 || city[1] == 4);    // unseen -> one of 2 OOV buckets after the vocabulary
  EXPECT_EQ(city[2], 3);                        // missing -> the first OOV bucket
  EXPECT_EQ(offs(1), (std::vector<int64_t>{0, 2, 2, 5}));  // bag of words; a missing cell is an empty bag
  for (int64_t id : ids(2)) EXPECT_LT(id, 7);
  EXPECT_EQ(ids(3), (std::vector<int64_t>{1, 2, 0}));  // buckets of 20, 50 and the missing default 0
  for (int64_t id : ids(4)) EXPECT_LT(id, 11);
  // Equal inputs give equal crosses; the hash is stable.
  ModelInputs again = t.apply(rows, nullptr);
  EXPECT_EQ(0, std::memcmp(again.ids[4].ids.raw(), in.ids[4].ids.raw(), in.ids[4].ids.bytes()));
  const float* d = in.dense.data<float>();
  EXPECT_EQ(d[0], 1.0f);  // paris is city_top's id 0
  EXPECT_EQ(d[1], 0.0f);
  EXPECT_EQ(d[2], 0.0f);  // tokyo -> the OOV slot
  EXPECT_EQ(d[3], 1.0f);
  EXPECT_EQ(in.label.data<int32_t>()[0], 1);  // "yes"
}

TEST(Transformer, DropRowBadValuesAndUnknownColumns) {
  TransformState s = analyze_text(
      "features { name: 'age' numeric {} missing { kind: DROP_ROW } } "
      "features { name: 'city' categorical { vocabulary {} } } label { column: 'label' type: MULTICLASS }");
  EXPECT_EQ(s.rows(), 4);  // the row with a missing age is not analyzed either
  Transformer t(s, kColumns, true);
  VectorRows rows(kColumns, {{"NA", "paris", "", "", "yes", ""}, {"abc", "paris", "", "", "yes", ""},
                             {"3", "rome", "", "", "maybe", ""}, {"4", "rome", "", "", "no", ""}});
  io::ErrorBudget budget(10);
  ModelInputs in = t.apply(rows, &budget);
  EXPECT_EQ(in.source_rows, (std::vector<int64_t>{3}));
  EXPECT_EQ(budget.count(), 2);  // "abc" and the unseen label; the DROP_ROW row is not malformed
  try {
    VectorRows one(kColumns, {{"abc", "paris", "", "", "yes", ""}});
    t.apply(one, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "instances[0].age: cannot parse 'abc' as a number for feature 'age'");
  }
  try {
    VectorRows one(kColumns, {{"NA", "paris", "", "", "yes", ""}});
    t.apply(one, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "instances[0].age: feature 'age' is missing and its policy is DROP_ROW");
  }
  EXPECT_THROW(Transformer(s, {"age", "label"}, true), Error);
  try {
    Transformer(s, {"age", "label"}, true);
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "feature 'city': the data has no column 'city'");
  }
  // Serving needs no label column.
  EXPECT_NO_THROW(Transformer(s, {"age", "city"}, false));
}

// Analysis and the Transformer keep the same rows (transform/row_screen.h): a number spelled
// "inf" or "nan" (not an NA value here) is a bad value in both, never a silent fill, and a
// numeric label must be a finite number.
TEST(Transformer, KeepsTheRowsAnalysisKept) {
  const std::string path = (std::filesystem::temp_directory_path() / "kiln_transformer_rows.csv").string();
  const char* csv =
      "age,city,tags,score,label,key\n"
      "10,paris,a,1.5,1,k1\n"
      "inf,paris,a,2.5,2,k2\n"
      "30,rome,a,nan,3,k3\n"
      "40,oslo,a,4.5,NA,k4\n"
      "50,oslo,a,5.5,-inf,k5\n"
      "60,oslo,a,NA,6,k6\n";
  std::ofstream(path) << csv;
  FeatureSpec spec;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "features { name: 'age' numeric {} } features { name: 'score' numeric {} } "
      "features { name: 'city' categorical { vocabulary {} } } label { column: 'label' } "
      "csv { max_bad_rows: 10 na_values: 'NA' }",
      &spec));
  LocalCommunicator local;
  const TransformState s = analyze_dataset(spec, AnalysisOptions{{path}, 1, false}, local);
  EXPECT_EQ(s.rows(), 2);
  EXPECT_EQ(s.bad_rows(), 3);  // the missing label is skipped (label_missing SKIP), not bad
  const std::map<std::string, int64_t> left_out(s.rows_left_out().begin(), s.rows_left_out().end());
  EXPECT_EQ(left_out, (std::map<std::string, int64_t>{{"feature 'age' not a number", 1},
                                                      {"feature 'score' not a number", 1},
                                                      {"label not a number", 1},
                                                      {"missing label", 1}}));
  EXPECT_EQ(s.features(0).numeric().mean(), 35.0);  // rows 1 and 6
  Transformer t(s, kColumns, true);
  VectorRows rows(kColumns, {{"10", "paris", "a", "1.5", "1", "k1"},
                             {"inf", "paris", "a", "2.5", "2", "k2"},
                             {"30", "rome", "a", "nan", "3", "k3"},
                             {"40", "oslo", "a", "4.5", "NA", "k4"},
                             {"50", "oslo", "a", "5.5", "-inf", "k5"},
                             {"60", "oslo", "a", "NA", "6", "k6"}});
  io::ErrorBudget budget(10);
  ModelInputs in = t.apply(rows, &budget);
  EXPECT_EQ(in.source_rows, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(budget.count(), 3);
  EXPECT_EQ(budget.left_out(), left_out);  // training reports what analysis did
  EXPECT_EQ(io::describe_left_out(budget.left_out()),
            "4 rows left out: 1 feature 'age' not a number, 1 feature 'score' not a number, 1 label not a number, "
            "1 missing label");
  const std::vector<io::BadRow> first = budget.first();
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(io::format_bad_row(first[0]), "instances[1].age: cannot parse 'inf' as a number for feature 'age'");
  EXPECT_EQ(io::format_bad_row(first[2]), "instances[4].label: cannot parse label '-inf' as a number");

  // label_missing ERROR: the row without a label is a malformed row, and fails a zero budget
  // with an error that names the setting.
  spec.mutable_label()->set_label_missing(LabelSpec::ERROR);
  const TransformState strict = analyze_dataset(spec, AnalysisOptions{{path}, 1, false}, local);
  EXPECT_EQ(strict.bad_rows(), 4);
  Transformer ts(strict, kColumns, true);
  io::ErrorBudget strict_budget(10);
  ts.apply(rows, &strict_budget);
  ASSERT_EQ(strict_budget.count(), 4);
  EXPECT_EQ(io::format_bad_row(strict_budget.first()[2]), "instances[3].label: the label is missing");
  io::ErrorBudget none(0);
  try {
    ts.apply(rows, &none);
    ADD_FAILURE() << "a zero budget accepted a bad row";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("csv.max_bad_rows is 0"), std::string::npos) << e.what();
  }
}

TEST(FeatureSpecValidation, ErrorsNameTheFeature) {
  auto err = [](const std::string& text) {
    FeatureSpec spec;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
    try {
      validate_feature_spec(spec);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(err("features { name: 'x' }"), "feature_spec.features[0] (x): set one of numeric, bucketized, categorical, crossed");
  EXPECT_EQ(err("features { name: 'x' numeric {} } features { name: 'x' numeric {} }"),
            "feature_spec.features[1] (x): duplicate feature name");
  EXPECT_EQ(err("features { name: 'c' crossed { columns: ['a', 'b'] hash_buckets: 4 } }"),
            "feature_spec.features[0] (c): crossed column 'a' must name an earlier bucketized or categorical feature");
  EXPECT_EQ(err("features { name: 'b' bucketized { boundaries: [2, 1] } }"),
            "feature_spec.features[0] (b): bucketized.boundaries must be strictly ascending");
  EXPECT_EQ(err("features { name: 'v' categorical { vocabulary { num_oov_buckets: 0 } } }"),
            "feature_spec.features[0] (v): categorical.vocabulary.num_oov_buckets must be >= 1 (unseen values need a "
            "bucket)");
  EXPECT_EQ(err("features { name: 'n' numeric {} output: EMBEDDING }"),
            "feature_spec.features[0] (n): a numeric feature's output must be DENSE");
}

}  // namespace
}  // namespace kiln::transform
