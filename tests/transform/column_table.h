#pragma once
// A CSV file read into memory as text columns, and those columns as ColumnRows: the chosen ones
// as doubles parsed from their text (NA: NaN), the others as the text itself. With the babyweight
// example's data and a spec that uses every kind of feature on it.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "io/csv_reader.h"
#include "io/number_parse.h"
#include "transform/column_rows.h"
#include "transform/csv_rows.h"

namespace kiln::transform::testing {

struct TextTable {
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> text;  // [column][row]
  std::vector<std::vector<uint8_t>> na;        // the spec's csv.na_values
  int64_t rows = 0;
};

inline TextTable read_table(const std::vector<std::string>& files, const FeatureSpec& spec) {
  io::CsvReader reader(files, csv_options(spec.csv(), 1), nullptr);
  TextTable t;
  t.names = reader.column_names();
  t.text.resize(t.names.size());
  t.na.resize(t.names.size());
  reader.for_each_chunk([&](const io::CsvChunk& chunk) {  // one thread: in order, on this one
    for (size_t c = 0; c < t.names.size(); ++c)
      for (int64_t r = 0; r < chunk.rows(); ++r) {
        t.text[c].emplace_back(chunk.field(r, static_cast<int>(c)));
        t.na[c].push_back(chunk.is_na(r, static_cast<int>(c)));
      }
    t.rows += chunk.rows();
  });
  return t;
}

// Unquoted: the babyweight data and numbers need no quotes.
inline void write_table(const TextTable& t, const std::string& path) {
  std::ofstream out(path);
  for (size_t c = 0; c < t.names.size(); ++c) out << (c ? "," : "") << t.names[c];
  out << "\n";
  for (int64_t r = 0; r < t.rows; ++r) {
    for (size_t c = 0; c < t.names.size(); ++c) out << (c ? "," : "") << t.text[c][static_cast<size_t>(r)];
    out << "\n";
  }
}

// A table as ColumnRows, with the memory it points into.
struct TableRows {
  std::vector<std::vector<double>> numbers;  // by column; empty for a text column
  std::unique_ptr<ColumnRows> rows;
};

inline std::unique_ptr<TableRows> column_rows(const TextTable& t, const std::set<std::string>& numeric) {
  auto out = std::make_unique<TableRows>();
  out->numbers.resize(t.names.size());
  out->rows = std::make_unique<ColumnRows>(t.rows);
  for (size_t c = 0; c < t.names.size(); ++c) {
    if (numeric.count(t.names[c])) {
      std::vector<double>& x = out->numbers[c];
      x.resize(static_cast<size_t>(t.rows));
      for (size_t r = 0; r < x.size(); ++r)
        if (t.na[c][r])
          x[r] = NAN;
        else
          EXPECT_TRUE(io::parse_double(t.text[c][r], &x[r])) << t.names[c] << " row " << r << ": " << t.text[c][r];
      out->rows->add_numbers(t.names[c], x.data());
    } else {
      out->rows->add_text(t.names[c], std::vector<std::string_view>(t.text[c].begin(), t.text[c].end()), t.na[c]);
    }
  }
  return out;
}

inline std::string babyweight_dir() { return std::string(KILN_SOURCE_DIR_PATH) + "/examples/babyweight"; }

inline std::vector<std::string> babyweight_train_files() {
  const std::string data = babyweight_dir() + "/data";
  if (!std::filesystem::exists(data + "/eval.csv"))
    ADD_FAILURE() << "run examples/babyweight/fetch_data.sh first (scripts/test.sh does)";
  return {data + "/train-00000.csv", data + "/train-00001.csv"};
}

inline const std::set<std::string> kBabyweightNumbers{"mother_age",  "mother_educ",          "father_age",
                                                      "prenatal_visits", "prenatal_start_month", "cigs_per_day",
                                                      "drinks_per_week", "weight_pounds"};

// The example's spec with more features on its numeric columns: a hash of one read before its
// numeric feature, a vocabulary of one, quantile buckets, a DROP_ROW feature; bad rows allowed.
inline FeatureSpec babyweight_spec() {
  std::ifstream in(babyweight_dir() + "/feature_spec.pbtxt");
  std::stringstream example;
  example << in.rdbuf();
  const std::string text =
      "features { name: 'age_hash' source: 'mother_age' categorical { hash { buckets: 7 } } }\n" + example.str() +
      "features { name: 'race_hash' source: 'mother_race' categorical { hash { buckets: 5 } } }\n"
      "features { name: 'educ_vocab' source: 'mother_educ' categorical { vocabulary {} } "
      "  missing { default_category: '12' } }\n"
      "features { name: 'visits_q' source: 'prenatal_visits' bucketized { num_quantile_buckets: 4 } "
      "  missing { kind: MEDIAN } }\n"
      "features { name: 'father_age_kept' source: 'father_age' numeric { scaling: MIN_MAX clip_min: 18 } "
      "  missing { kind: DROP_ROW } }\n"
      "csv { max_bad_rows: 20 }\n";
  FeatureSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  return spec;
}

// A path of this process's own: ctest runs a file's tests as concurrent processes.
inline std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "." + std::to_string(::getpid()) + ".csv")).string();
}

}  // namespace kiln::transform::testing
