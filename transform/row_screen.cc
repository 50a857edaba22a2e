#include "transform/row_screen.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/number_parse.h"

namespace kiln::transform {

RowScreen::RowScreen(const FeatureSpec& spec, std::vector<int> feature_cols, int label_col) : label_col_(label_col) {
  KILN_CHECK(static_cast<int>(feature_cols.size()) == spec.features_size(), feature_cols.size(), " columns for ",
             spec.features_size(), " features");
  for (int i = 0; i < spec.features_size(); ++i) {
    const FeatureColumn& f = spec.features(i);
    Feature feature{f.name(), feature_cols[static_cast<size_t>(i)], f.has_numeric() || f.has_bucketized(),
                    f.missing().kind() == MissingPolicy::DROP_ROW};
    for (int j = 0; j < i && feature.col >= 0; ++j)
      if (features_[static_cast<size_t>(j)].col == feature.col) {
        feature.same_column_as = j;
        break;
      }
    features_.push_back(std::move(feature));
  }
  const LabelSpec& label = spec.label();
  skip_missing_label_ = label.label_missing() == LabelSpec::SKIP;
  regression_label_ = label.type() == LabelSpec::REGRESSION;
  numeric_label_ = regression_label_ ||
                   (label.type() == LabelSpec::BINARY && label.positive_values_size() == 0);
}

void RowScreen::screen(const RawRows& rows, int64_t begin, int64_t end, Block* block) const {
  const auto n = static_cast<size_t>(end - begin);
  const size_t nf = features_.size();
  block->begin = begin;
  block->size = end - begin;
  block->verdict.assign(n, Verdict::kept);
  block->failed.resize(n);
  block->missing.resize(nf);
  block->number.resize(nf);
  block->text.resize(nf);
  Verdict* verdict = block->verdict.data();
  int* failed = block->failed.data();
  auto reject = [&](size_t r, Verdict v, int feature) {
    verdict[r] = v;
    failed[r] = feature;
  };
  // A numeric feature reads a column the source holds as numbers as they are (NaN: missing),
  // leaving its text unread; a feature copies an earlier one of its column only when both read
  // it the same way.
  auto reads_numbers = [&](const Feature& f) { return f.numeric && rows.numbers(f.col) != nullptr; };
  for (size_t i = 0; i < nf; ++i) {
    const Feature& f = features_[i];
    if (f.col < 0) continue;
    block->text[i].resize(n);
    block->missing[i].resize(n);
    if (f.numeric) block->number[i].resize(n);
    std::string_view* text = block->text[i].data();
    uint8_t* missing = block->missing[i].data();
    double* number = f.numeric ? block->number[i].data() : nullptr;
    const double* x = f.numeric ? rows.numbers(f.col) : nullptr;
    const auto same = static_cast<size_t>(f.same_column_as);
    const bool copy = f.same_column_as >= 0 && reads_numbers(features_[same]) == (x != nullptr);
    if (copy) {
      std::copy_n(block->text[same].data(), n, text);
      std::copy_n(block->missing[same].data(), n, missing);
    } else if (x) {
      std::fill_n(text, n, std::string_view());
      for (size_t r = 0; r < n; ++r) {
        number[r] = x[static_cast<size_t>(begin) + r];
        missing[r] = std::isnan(number[r]);
      }
    } else {
      rows.column(f.col, begin, end, text, missing);
    }
    if (f.drop_if_missing)
      for (size_t r = 0; r < n; ++r)
        if (missing[r] && verdict[r] == Verdict::kept) reject(r, Verdict::dropped, static_cast<int>(i));
    if (!f.numeric) continue;
    if (copy && features_[same].numeric) {
      // Every row still kept was checked there: the same column gives the same number.
      std::copy_n(block->number[same].data(), n, number);
      continue;
    }
    // Every field is parsed in one call (those of missing or rejected rows too, to no effect).
    // A number given as one is checked as its text would be: +-inf is bad, as "inf" is.
    block->parsed.resize(n);
    const uint8_t* parsed = block->parsed.data();
    if (x)
      std::fill_n(block->parsed.data(), n, 1);
    else
      rows.parse_numbers(text, n, number, block->parsed.data());
    for (size_t r = 0; r < n; ++r) {
      if (missing[r] || verdict[r] != Verdict::kept) continue;
      if (!parsed[r] || !std::isfinite(number[r])) reject(r, Verdict::bad, static_cast<int>(i));
    }
  }
  if (label_col_ < 0) return;
  block->label_text.resize(n);
  block->label_missing.resize(n);
  if (numeric_label_) block->label_number.resize(n);
  // A numeric label given as numbers is read as they are. Its text is read only for a BINARY
  // label, whose values analysis counts; nothing reads a REGRESSION label's.
  const double* y = numeric_label_ ? rows.numbers(label_col_) : nullptr;
  if (y) std::copy_n(y + begin, n, block->label_number.data());
  if (y && regression_label_) {
    std::fill_n(block->label_text.data(), n, std::string_view());
    for (size_t r = 0; r < n; ++r) block->label_missing[r] = std::isnan(block->label_number[r]);
  } else {
    rows.column(label_col_, begin, end, block->label_text.data(), block->label_missing.data());
  }
  for (size_t r = 0; r < n; ++r) {
    if (verdict[r] != Verdict::kept) continue;
    if (block->label_missing[r]) {
      reject(r, skip_missing_label_ ? Verdict::dropped : Verdict::bad, -1);
      continue;
    }
    if (numeric_label_ &&
        ((!y && !io::parse_double(block->label_text[r], &block->label_number[r])) || !std::isfinite(block->label_number[r])))
      reject(r, Verdict::bad, -1);
  }
}

int RowScreen::column_of(const Block& block, int64_t offset) const {
  const int feature = block.failed[static_cast<size_t>(offset)];
  return feature < 0 ? label_col_ : features_[static_cast<size_t>(feature)].col;
}

std::string RowScreen::reason(const RawRows& rows, const Block& block, int64_t offset) const {
  const auto k = static_cast<size_t>(offset);
  KILN_CHECK(block.verdict[k] != Verdict::kept, "row ", block.begin + offset, " was kept");
  const int64_t row = block.begin + offset;
  const int feature = block.failed[k];
  if (feature < 0) {
    if (rows.is_na(row, label_col_))
      return block.verdict[k] == Verdict::dropped ? "the label is missing (label_missing SKIP)" : "the label is missing";
    return str_cat("cannot parse label '", rows.field(row, label_col_), "' as a number");
  }
  const Feature& f = features_[static_cast<size_t>(feature)];
  if (block.verdict[k] == Verdict::dropped) return str_cat("feature '", f.name, "' is missing and its policy is DROP_ROW");
  return str_cat("cannot parse '", rows.field(row, f.col), "' as a number for feature '", f.name, "'");
}

int RowScreen::category_key(const Block& block, int64_t offset) const {
  const auto k = static_cast<size_t>(offset);
  const int feature = block.failed[k];
  if (feature < 0) return block.label_missing[k] ? 0 : 1;
  return 2 + 2 * feature + (block.verdict[k] == Verdict::dropped ? 0 : 1);
}

std::string RowScreen::category_name(int key) const {
  if (key < 2) return key == 0 ? "missing label" : "label not a number";
  const Feature& f = features_[static_cast<size_t>((key - 2) / 2)];
  return str_cat("feature '", f.name, (key % 2 == 0) ? "' missing (DROP_ROW)" : "' not a number");
}

}  // namespace kiln::transform
