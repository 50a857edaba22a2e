#include "transform/dataset_analysis.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

#include "core/error.h"
#include "io/csv_reader.h"
#include "io/error_budget.h"
#include "io/file_pattern.h"
#include "io/number_parse.h"
#include "proto/analysis_partial.pb.h"
#include "transform/csv_rows.h"
#include "transform/moments.h"
#include "transform/quantile_sketch.h"
#include "transform/transformer.h"
#include "transform/vocabulary_counter.h"

namespace kiln::transform {

namespace {

// The analyzers of one column.
struct ColumnAccumulator {
  enum class Kind { none, numeric, categorical };
  Kind kind = Kind::none;
  int64_t missing = 0;
  Moments moments;
  QuantileSketch sketch;
  VocabularyCounter vocab;
  std::string delimiter;  // multi-valued categorical

  void merge(const ColumnAccumulator& o) {
    missing += o.missing;
    moments.merge(o.moments);
    sketch.merge(o.sketch);
    vocab.merge(o.vocab);
  }
  void to_proto(FeatureAnalyzerState* s) const {
    s->set_missing(missing);
    if (kind == Kind::numeric) {
      moments.to_proto(s->mutable_numeric()->mutable_moments());
      sketch.to_proto(s->mutable_numeric()->mutable_sketch());
    } else if (kind == Kind::categorical) {
      vocab.to_proto(s->mutable_vocabulary());
    }
  }
  void merge_proto(const FeatureAnalyzerState& s) {
    missing += s.missing();
    if (kind == Kind::numeric) {
      moments.merge(Moments::from_proto(s.numeric().moments()));
      sketch.merge(QuantileSketch::from_proto(s.numeric().sketch()));
    } else if (kind == Kind::categorical) {
      vocab.merge(VocabularyCounter::from_proto(s.vocabulary()));
    }
  }
};

struct Accumulators {
  std::vector<ColumnAccumulator> features;
  ColumnAccumulator label;
  int64_t rows = 0;

  explicit Accumulators(const FeatureSpec& spec) {
    for (const FeatureColumn& f : spec.features()) {
      ColumnAccumulator a;
      if (f.has_numeric() || f.has_bucketized()) a.kind = ColumnAccumulator::Kind::numeric;
      if (f.has_categorical()) {
        a.kind = ColumnAccumulator::Kind::categorical;
        a.delimiter = f.categorical().multi_value_delimiter();
      }
      features.push_back(std::move(a));
    }
    if (spec.has_label())
      label.kind = spec.label().type() == LabelSpec::MULTICLASS || spec.label().type() == LabelSpec::BINARY
                       ? ColumnAccumulator::Kind::categorical
                       : ColumnAccumulator::Kind::numeric;
  }
  void merge(const Accumulators& o) {
    for (size_t i = 0; i < features.size(); ++i) features[i].merge(o.features[i]);
    label.merge(o.label);
    rows += o.rows;
  }
};

// Adds the rows of one chunk. A row is used whole or not at all, exactly as the Transformer will
// use it in training: rows with an unparseable number or an unusable label are bad rows; rows
// with a missing DROP_ROW feature are skipped.
void accumulate(const FeatureSpec& spec, const RawRows& rows, const std::vector<int>& cols, int label_col,
                io::ErrorBudget& budget, Accumulators& acc) {
  const int nf = spec.features_size();
  std::vector<double> values(static_cast<size_t>(nf));
  std::vector<char> missing(static_cast<size_t>(nf));
  for (int64_t r = 0; r < rows.rows(); ++r) {
    bool ok = true;
    for (int i = 0; i < nf && ok; ++i) {
      const FeatureColumn& f = spec.features(i);
      if (cols[i] < 0) continue;  // crossed: nothing to analyze
      missing[i] = rows.is_na(r, cols[i]);
      if (missing[i] && f.missing().kind() == MissingPolicy::DROP_ROW) ok = false;
      if (missing[i] || acc.features[i].kind != ColumnAccumulator::Kind::numeric) continue;
      if (!io::parse_double(rows.field(r, cols[i]), &values[i]) || !std::isfinite(values[i])) {
        budget.add({rows.where(r, cols[i]), 0, 0,
                    str_cat("cannot parse '", rows.field(r, cols[i]), "' as a number for feature '", f.name(), "'")});
        ok = false;
      }
    }
    if (!ok) continue;
    double label_value = 0;
    if (label_col >= 0) {
      if (rows.is_na(r, label_col)) {
        budget.add({rows.where(r, label_col), 0, 0, "the label is missing"});
        continue;
      }
      bool numeric_label = acc.label.kind == ColumnAccumulator::Kind::numeric ||
                           (spec.label().type() == LabelSpec::BINARY && spec.label().positive_values_size() == 0);
      if (numeric_label && (!io::parse_double(rows.field(r, label_col), &label_value) || !std::isfinite(label_value))) {
        budget.add({rows.where(r, label_col), 0, 0, str_cat("cannot parse label '", rows.field(r, label_col), "' as a number")});
        continue;
      }
    }
    for (int i = 0; i < nf; ++i) {
      if (cols[i] < 0) continue;
      ColumnAccumulator& a = acc.features[i];
      if (missing[i]) {
        ++a.missing;
      } else if (a.kind == ColumnAccumulator::Kind::numeric) {
        a.moments.add(values[i]);
        a.sketch.add(values[i]);
      } else {
        for_each_value(rows.field(r, cols[i]), a.delimiter, [&](std::string_view v) { a.vocab.add(v); });
      }
    }
    if (label_col >= 0) {
      if (acc.label.kind == ColumnAccumulator::Kind::numeric) {
        acc.label.moments.add(label_value);
        acc.label.sketch.add(label_value);
      } else {
        acc.label.vocab.add(rows.field(r, label_col));
      }
    }
    ++acc.rows;
  }
}

void fill_numeric(const ColumnAccumulator& a, NumericStats* s) {
  s->set_count(a.moments.count());
  s->set_missing(a.missing);
  if (a.moments.count() > 0) {
    s->set_mean(a.moments.mean());
    s->set_stddev(a.moments.stddev());
    s->set_min(a.moments.min());
    s->set_max(a.moments.max());
    // The sketch's quantiles may fall up to alpha outside the data: clamp to the exact range.
    s->set_median(std::clamp(a.sketch.quantile(0.5), a.moments.min(), a.moments.max()));
  }
  a.sketch.to_proto(s->mutable_sketch());
}

void fill_categorical(const ColumnAccumulator& a, int64_t top_k, int64_t threshold, CategoricalStats* s) {
  s->set_count(a.vocab.total());
  s->set_missing(a.missing);
  s->set_distinct(a.vocab.distinct());
  int64_t kept = 0;
  for (const auto& [value, n] : a.vocab.top(top_k, threshold)) {
    s->add_vocabulary(value);
    s->add_frequencies(n);
    kept += n;
  }
  s->set_oov_count(a.vocab.total() - kept);
}

TransformState finish(const FeatureSpec& spec, const Accumulators& acc) {
  TransformState state;
  *state.mutable_spec() = spec;
  state.set_rows(acc.rows);
  int64_t dense = 0;
  for (int i = 0; i < spec.features_size(); ++i) {
    const FeatureColumn& f = spec.features(i);
    const ColumnAccumulator& a = acc.features[i];
    FeatureState* fs = state.add_features();
    fs->set_name(f.name());
    std::string where = str_cat("feature '", f.name(), "'");
    if (a.kind == ColumnAccumulator::Kind::numeric) {
      fill_numeric(a, fs->mutable_numeric());
      if (a.moments.count() == 0 && f.missing().kind() != MissingPolicy::DEFAULT)
        fail(where, ": no values to compute the ", MissingPolicy::Kind_Name(f.missing().kind()), " imputation from");
    }
    if (f.has_bucketized()) {
      const BucketizedTransform& b = f.bucketized();
      if (!b.boundaries().empty()) {
        for (double x : b.boundaries()) fs->add_boundaries(x);
      } else {
        if (a.moments.count() == 0) fail(where, ": no values to compute quantile buckets from");
        for (double x : a.sketch.quantile_boundaries(b.num_quantile_buckets())) fs->add_boundaries(x);
      }
      fs->set_id_space(fs->boundaries_size() + 1);
    } else if (f.has_categorical()) {
      const CategoricalTransform& c = f.categorical();
      if (c.has_vocabulary()) {
        fill_categorical(a, c.vocabulary().top_k(), c.vocabulary().frequency_threshold(), fs->mutable_categorical());
        fs->set_id_space(fs->categorical().vocabulary_size() + c.vocabulary().num_oov_buckets());
      } else {
        fill_categorical(a, 20, 1, fs->mutable_categorical());  // top values for the summary and drift
        fs->set_id_space(c.hash().buckets());
      }
    } else if (f.has_crossed()) {
      fs->set_id_space(f.crossed().hash_buckets());
    }
    FeatureColumn::Output out = resolved_output(f);
    int64_t width = out == FeatureColumn::DENSE ? 1 : out == FeatureColumn::ONE_HOT ? fs->id_space() : 0;
    if (f.missing().indicator()) ++width;
    fs->set_dense_width(width);
    dense += width;
  }
  state.set_dense_width(dense);
  if (spec.has_label()) {
    FeatureState* ls = state.mutable_label();
    ls->set_name(spec.label().column());
    if (acc.label.kind == ColumnAccumulator::Kind::numeric) {
      fill_numeric(acc.label, ls->mutable_numeric());
    } else {
      fill_categorical(acc.label, 0, 1, ls->mutable_categorical());
      // Class ids in byte order of the label values: stable whatever the class frequencies.
      if (spec.label().type() == LabelSpec::MULTICLASS) {
        auto* cs = ls->mutable_categorical();
        std::vector<std::pair<std::string, int64_t>> v;
        for (int k = 0; k < cs->vocabulary_size(); ++k) v.emplace_back(cs->vocabulary(k), cs->frequencies(k));
        std::sort(v.begin(), v.end());
        cs->clear_vocabulary();
        cs->clear_frequencies();
        for (auto& [value, n] : v) {
          cs->add_vocabulary(value);
          cs->add_frequencies(n);
        }
        if (cs->vocabulary_size() < 2) fail("feature_spec.label: a MULTICLASS label needs at least 2 classes");
      }
      ls->set_id_space(ls->categorical().vocabulary_size());
    }
  }
  return state;
}

}  // namespace

TransformState analyze_dataset(const FeatureSpec& spec, const AnalysisOptions& options, Communicator& comm) {
  validate_feature_spec(spec);
  std::vector<std::string> files = io::expand_file_patterns(options.files);
  std::vector<std::string> mine;
  for (size_t i = 0; i < files.size(); ++i)
    if (static_cast<int>(i % static_cast<size_t>(comm.size())) == comm.rank()) mine.push_back(files[i]);
  io::CsvOptions csv = csv_options(spec.csv(), options.threads);
  auto budget = std::make_shared<io::ErrorBudget>(spec.csv().max_bad_rows());
  Accumulators total(spec);
  if (!mine.empty()) {
    io::CsvReader reader(mine, csv, budget);
    std::vector<int> cols;
    for (const FeatureColumn& f : spec.features()) {
      if (f.has_crossed()) {
        cols.push_back(-1);
        continue;
      }
      std::string name = f.has_source() ? f.source() : f.name();
      int c = reader.column_index(name);
      if (c < 0) fail("feature '", f.name(), "': the data (", mine.front(), ") has no column '", name, "'");
      cols.push_back(c);
    }
    int label_col = -1;
    if (spec.has_label()) {
      label_col = reader.column_index(spec.label().column());
      if (label_col < 0) fail("feature_spec.label: the data (", mine.front(), ") has no column '", spec.label().column(), "'");
    }
    // One accumulator per worker thread; merging is exact, so how chunks land on threads does
    // not matter.
    std::mutex mutex;
    std::vector<std::unique_ptr<Accumulators>> free_list, all;
    auto start = std::chrono::steady_clock::now();
    int64_t chunks = 0;
    reader.for_each_chunk([&](const io::CsvChunk& chunk) {
      std::unique_ptr<Accumulators> acc;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (!free_list.empty()) {
          acc = std::move(free_list.back());
          free_list.pop_back();
        }
      }
      if (!acc) acc = std::make_unique<Accumulators>(spec);
      accumulate(spec, CsvRows(chunk), cols, label_col, *budget, *acc);
      std::lock_guard<std::mutex> lock(mutex);
      free_list.push_back(std::move(acc));
      if (options.progress && comm.rank() == 0 && ++chunks % 25 == 0) {
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::fprintf(stderr, "analyze: %lld chunks, %.1f s\n", static_cast<long long>(chunks), secs);
      }
    });
    for (auto& a : free_list) total.merge(*a);
  }
  // Ranks exchange their partials and every rank merges them all (exactly, so the order and
  // grouping do not matter); a single process uses its own accumulators as they are.
  int64_t bad_rows = budget->count();
  Accumulators merged(spec);
  if (comm.size() > 1) {
    AnalysisPartial part;
    for (const auto& f : total.features) f.to_proto(part.add_features());
    total.label.to_proto(part.mutable_label());
    part.set_rows(total.rows);
    part.set_bad_rows(bad_rows);
    bad_rows = 0;
    for (const std::string& bytes_of_rank : comm.all_gather(part.SerializeAsString())) {
      AnalysisPartial p;
      if (!p.ParseFromString(bytes_of_rank)) fail(comm.describe(), ": corrupt analysis partial from a peer");
      for (int i = 0; i < p.features_size(); ++i) merged.features[i].merge_proto(p.features(i));
      merged.label.merge_proto(p.label());
      merged.rows += p.rows();
      bad_rows += p.bad_rows();
    }
  }
  TransformState state = finish(spec, comm.size() > 1 ? merged : total);
  state.set_bad_rows(bad_rows);
  for (const auto& f : files) state.add_files(f);
  return state;
}

}  // namespace kiln::transform
