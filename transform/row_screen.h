#pragma once
// RowScreen: which raw rows are used, and why the others are not. Analysis and the Transformer
// both screen their rows with it, so the statistics are computed over exactly the rows that
// training, export, serving and prediction use.
//
// The rules, checked in spec order; the first failing check decides the row:
// - a feature whose value is missing (NA) drops the row when its policy is DROP_ROW: an expected
//   drop, not an error;
// - a numeric or bucketized feature's value must parse as a finite number (io/number_parse.h), or
//   the row is bad: "inf" or "nan" written in the data are bad values, not missing ones (unless
//   they are NA spellings). A column the source holds as numbers (RawRows::numbers) is read as
//   they are, with the verdicts of their text: NaN is missing, +-inf bad;
// - then the label, when one is bound: a missing label drops the row (label_missing SKIP, the
//   default) or makes it bad (ERROR); a numeric label (REGRESSION, or BINARY without
//   positive_values) that is not a finite number makes it bad.
//
// It works on blocks of rows, one column at a time (tight loops over one kind of value), and
// keeps what callers need next: missing flags, parsed numbers and categorical values.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/feature_spec.pb.h"
#include "transform/raw_rows.h"

namespace kiln::transform {

class RowScreen {
 public:
  enum class Verdict : uint8_t { kept, dropped, bad };

  // What screen() found for rows [begin, begin + size). Per-row vectors are indexed by the row's
  // offset in the block, per-feature ones first by spec feature; they keep their storage from one
  // block to the next. Values of a row that is not kept are unspecified from its failed check on.
  struct Block {
    int64_t begin = 0;
    int64_t size = 0;
    std::vector<Verdict> verdict;
    std::vector<int> failed;                             // the feature whose check failed; -1: the label
    std::vector<std::vector<uint8_t>> missing;           // every feature with a column
    std::vector<std::vector<double>> number;             // numeric and bucketized features
    // Every feature with a column; empty for a numeric one read from RawRows::numbers.
    std::vector<std::vector<std::string_view>> text;
    std::vector<double> label_number;                    // a numeric label
    std::vector<std::string_view> label_text;            // empty for a REGRESSION label read from numbers
    std::vector<uint8_t> label_missing;
    std::vector<uint8_t> parsed;  // screen()'s scratch: which fields of a column parsed
  };

  // feature_cols[i]: the column of spec feature i, -1 for crossed features (they have none);
  // label_col: the label's column, -1 to screen without a label (serving).
  RowScreen(const FeatureSpec& spec, std::vector<int> feature_cols, int label_col);

  void screen(const RawRows& rows, int64_t begin, int64_t end, Block* block) const;

  // For a row of the block that was not kept: the column whose check failed, and why ("cannot
  // parse 'x' as a number for feature 'age'").
  int column_of(const Block& block, int64_t offset) const;
  std::string reason(const RawRows& rows, const Block& block, int64_t offset) const;
  // The short reason a run reports a row that was not kept under: a small key (rows are counted
  // by key, without a string per row) and its name: "missing label", "label not a number",
  // "feature 'age' not a number", "feature 'age' missing (DROP_ROW)".
  int category_key(const Block& block, int64_t offset) const;
  std::string category_name(int key) const;
  std::string category(const Block& block, int64_t offset) const { return category_name(category_key(block, offset)); }

  bool numeric_label() const { return numeric_label_; }

 private:
  struct Feature {
    std::string name;
    int col = -1;
    bool numeric = false;
    bool drop_if_missing = false;
    // An earlier feature of the same column (one column can feed several features): its values
    // and flags are copied, and its numbers too when it is numeric, instead of read again.
    int same_column_as = -1;
  };
  std::vector<Feature> features_;
  int label_col_ = -1;
  bool numeric_label_ = false;
  bool regression_label_ = false;
  bool skip_missing_label_ = true;
};

}  // namespace kiln::transform
