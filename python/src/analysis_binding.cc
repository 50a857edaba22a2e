// kiln.analyze's C++ half: the full pass of `kiln analyze` over columns in memory
// (transform::analyze_rows: the same accumulators, quantile refinement and row screening).
#include <string>
#include <vector>

#include <google/protobuf/text_format.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "core/error.h"
#include "python/src/bindings.h"
#include "python/src/config_or_text.h"
#include "python/src/python_columns.h"
#include "transform/column_rows.h"
#include "transform/dataset_analysis.h"
#include "transform/state_report.h"
#include "transform/transformer.h"

namespace nb = nanobind;

namespace kiln::python {

namespace {

FeatureSpec read_spec(const std::string& spec_or_path) {
  FeatureSpec spec = read_config_or_text<FeatureSpec>(spec_or_path, "feature_spec");
  transform::validate_feature_spec(spec);
  return spec;
}

bool numeric_label(const LabelSpec& label) {
  return label.type() == LabelSpec::REGRESSION || (label.type() == LabelSpec::BINARY && label.positive_values_size() == 0);
}

// The columns the spec reads, in spec order, each with whether some feature reads it as a number.
nb::list spec_columns(const std::string& spec_or_path) {
  FeatureSpec spec = read_spec(spec_or_path);
  std::vector<std::pair<std::string, bool>> columns;
  auto add = [&](const std::string& name, bool numeric) {
    for (auto& [n, is_numeric] : columns)
      if (n == name) {
        is_numeric |= numeric;
        return;
      }
    columns.emplace_back(name, numeric);
  };
  for (const FeatureColumn& f : spec.features())
    if (!f.has_crossed()) add(f.has_source() ? f.source() : f.name(), f.has_numeric() || f.has_bucketized());
  if (spec.has_label()) add(spec.label().column(), numeric_label(spec.label()));
  nb::list out;
  for (const auto& [name, numeric] : columns) {
    nb::dict d;
    d["name"] = name;
    d["type"] = numeric ? "number" : "string";
    out.append(d);
  }
  return out;
}

void add_stats(nb::dict& row, const FeatureState& s) {
  if (s.has_numeric()) {
    const NumericStats& n = s.numeric();
    row["count"] = n.count();
    row["missing"] = n.missing();
    row["mean"] = n.mean();
    row["std"] = n.stddev();
    row["min"] = n.min();
    row["median"] = n.median();
    row["max"] = n.max();
  }
  if (s.has_categorical()) {
    const CategoricalStats& c = s.categorical();
    row["count"] = c.count();
    row["missing"] = c.missing();
    row["distinct"] = c.distinct();
    row["vocabulary_size"] = c.vocabulary_size();
    row["oov_count"] = c.oov_count();
    std::vector<std::string> top(c.vocabulary().begin(), c.vocabulary().begin() + std::min(c.vocabulary_size(), 5));
    row["top"] = top;
  }
  if (s.boundaries_size() > 0) row["buckets"] = s.boundaries_size() + 1;
  if (s.has_id_space()) row["id_space"] = s.id_space();
  if (s.has_dense_width()) row["dense_width"] = s.dense_width();
}

// (the TransformState as text, one dict of statistics per feature and the label)
nb::tuple analyze(const std::string& spec_or_path, const nb::dict& given) {
  FeatureSpec spec = read_spec(spec_or_path);
  PythonColumns columns(given);
  transform::ColumnRows rows(columns.rows(), "rows");
  std::vector<std::string> names;
  for (auto [key, value] : given) {
    names.push_back(nb::cast<std::string>(key));
    columns.add_to(rows, names.back());
  }
  TransformState state;
  {
    nb::gil_scoped_release released;
    state = transform::analyze_rows(spec, rows, names);
  }
  nb::list stats;
  for (int i = 0; i < state.features_size(); ++i) {
    nb::dict row;
    row["feature"] = state.features(i).name();
    row["kind"] = transform::feature_kind(spec.features(i));
    add_stats(row, state.features(i));
    stats.append(row);
  }
  if (state.has_label()) {
    nb::dict row;
    row["feature"] = spec.label().column();
    row["kind"] = "label";
    add_stats(row, state.label());
    stats.append(row);
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(state, &text);
  return nb::make_tuple(text, stats, state.rows(), state.bad_rows());
}

}  // namespace

void bind_analysis(nb::module_& m) {
  m.def("spec_columns", &spec_columns, nb::arg("spec"),
        "The columns a FeatureSpec (a file or its text) reads: [{'name', 'type': 'number' | 'string'}]");
  m.def("analyze", &analyze, nb::arg("spec"), nb::arg("columns"));
}

}  // namespace kiln::python
