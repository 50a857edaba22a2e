#include "transform/dataset_analysis.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "io/csv_reader.h"
#include "io/error_budget.h"
#include "io/file_pattern.h"
#include "proto/analysis_partial.pb.h"
#include "transform/csv_rows.h"
#include "transform/distinct_values.h"
#include "transform/moments.h"
#include "transform/quantile_refinement.h"
#include "transform/quantile_sketch.h"
#include "transform/row_screen.h"
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
  DistinctValues distinct;
  VocabularyCounter vocab;
  std::string delimiter;  // multi-valued categorical
  // Values on their way to the analyzers, which take them in batches of a few thousand (not
  // state: empty between chunks, since the views point into the chunk).
  std::vector<double> numbers;
  std::vector<std::string_view> values;

  void flush() {
    moments.add_all(numbers);
    sketch.add_all(numbers);
    distinct.add_all(numbers);
    numbers.clear();
    vocab.add_all(values);
    values.clear();
  }
  void merge(const ColumnAccumulator& o) {
    missing += o.missing;
    moments.merge(o.moments);
    sketch.merge(o.sketch);
    distinct.merge(o.distinct);
    vocab.merge(o.vocab);
  }
  void to_proto(FeatureAnalyzerState* s) const {
    s->set_missing(missing);
    if (kind == Kind::numeric) {
      moments.to_proto(s->mutable_numeric()->mutable_moments());
      sketch.to_proto(s->mutable_numeric()->mutable_sketch());
      distinct.to_proto(s->mutable_numeric()->mutable_distinct());
    } else if (kind == Kind::categorical) {
      vocab.to_proto(s->mutable_vocabulary());
    }
  }
  void merge_proto(const FeatureAnalyzerState& s) {
    missing += s.missing();
    if (kind == Kind::numeric) {
      moments.merge(Moments::from_proto(s.numeric().moments()));
      sketch.merge(QuantileSketch::from_proto(s.numeric().sketch()));
      distinct.merge(DistinctValues::from_proto(s.numeric().distinct()));
    } else if (kind == Kind::categorical) {
      vocab.merge(VocabularyCounter::from_proto(s.vocabulary()));
    }
  }
};

// Chunks small enough that a chunk's text and parsed fields stay in a core's L2 cache between
// parsing and analysis, and many enough that threads share a small file evenly.
constexpr size_t kChunkBytes = 256 << 10;

// Rows per screening block: the block's columns (numbers, values, flags) stay in L2, and the
// per-column work of a block (calls, resizes, batch setup) is spread over enough rows (128 rows
// took 2% more time on the 2 GB benchmark file).
constexpr int64_t kBlockRows = 512;

// Values a column collects before it hands them to its analyzers.
constexpr size_t kBatch = 4096;

// Which features share analyzers: a feature whose source column, kind and value delimiter equal
// an earlier one's sees the same values (RowScreen keeps rows for all features alike), so its
// statistics are that feature's. owner[i] is the first such feature (i itself when none).
std::vector<int> analyzer_owners(const FeatureSpec& spec) {
  auto key = [](const FeatureColumn& f) {
    const char* kind = f.has_categorical() ? "c" : f.has_numeric() || f.has_bucketized() ? "n" : nullptr;
    if (!kind) return std::string();  // crossed: nothing to analyze
    return str_cat(kind, f.has_categorical() ? f.categorical().multi_value_delimiter() : "", "\n",
                   f.has_source() ? f.source() : f.name());
  };
  std::vector<int> owner;
  for (int i = 0; i < spec.features_size(); ++i) {
    const std::string k = key(spec.features(i));
    int o = i;
    for (int j = 0; j < i && !k.empty(); ++j)
      if (key(spec.features(j)) == k) {
        o = j;
        break;
      }
    owner.push_back(o);
  }
  return owner;
}

struct Accumulators {
  std::vector<ColumnAccumulator> features;  // analyzed only where owner[i] == i
  std::vector<int> owner;                   // analyzer_owners()
  ColumnAccumulator label;
  int64_t rows = 0;
  RowScreen::Block block;  // accumulate()'s scratch, not state

  explicit Accumulators(const FeatureSpec& spec) : owner(analyzer_owners(spec)) {
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

// Appends in[k] of the rows a block kept to `out`, counting missing ones. Writes through a local
// pointer: push_back would reload the vector's end after every store.
template <typename T>
void collect_kept(const RowScreen::Block& b, const uint8_t* missing, const T* in, std::vector<T>& out, int64_t& missing_count) {
  const size_t old = out.size();
  out.resize(old + static_cast<size_t>(b.size));
  T* next = out.data() + old;
  for (int64_t k = 0; k < b.size; ++k) {
    if (b.verdict[k] != RowScreen::Verdict::kept) continue;
    if (missing && missing[k])
      ++missing_count;
    else
      *next++ = in[k];
  }
  out.resize(static_cast<size_t>(next - out.data()));
}

// Collects the numbers of the rows a block kept, counting missing ones.
void add_numbers(const RowScreen::Block& b, const uint8_t* missing, const double* number, ColumnAccumulator& a) {
  collect_kept(b, missing, number, a.numbers, a.missing);
  if (a.numbers.size() >= kBatch) a.flush();
}

// Collects the values of the rows a block kept, counting missing ones.
void add_values(const RowScreen::Block& b, const uint8_t* missing, const std::string_view* text, ColumnAccumulator& a) {
  if (a.delimiter.empty()) {
    collect_kept(b, missing, text, a.values, a.missing);
  } else {
    for (int64_t k = 0; k < b.size; ++k) {
      if (b.verdict[k] != RowScreen::Verdict::kept) continue;
      if (missing && missing[k])
        ++a.missing;
      else
        for_each_value(text[k], a.delimiter, [&](std::string_view v) { a.values.push_back(v); });
    }
  }
  if (a.values.size() >= kBatch) a.flush();
}

// Adds the rows of one chunk: the rows RowScreen keeps, exactly the rows training will use. Bad
// rows go to the budget in row order; dropped rows (DROP_ROW, a skipped missing label) are
// counted here and handed to the budget once per chunk. Each block of rows is screened first,
// then each column of the block is collected for its analyzers.
void accumulate(const RowScreen& screen, const RawRows& rows, io::ErrorBudget& budget, Accumulators& acc) {
  RowScreen::Block& b = acc.block;
  std::map<int, int64_t> skipped;  // by RowScreen::category_key
  for (int64_t begin = 0; begin < rows.rows(); begin += kBlockRows) {
    screen.screen(rows, begin, std::min(begin + kBlockRows, rows.rows()), &b);
    for (int64_t k = 0; k < b.size; ++k) {
      if (b.verdict[k] == RowScreen::Verdict::kept)
        ++acc.rows;
      else if (b.verdict[k] == RowScreen::Verdict::bad)
        budget.add({rows.where(begin + k, screen.column_of(b, k)), 0, 0, screen.reason(rows, b, k)}, screen.category(b, k));
      else
        ++skipped[screen.category_key(b, k)];
    }
    for (size_t i = 0; i < acc.features.size(); ++i) {
      if (acc.owner[i] != static_cast<int>(i)) continue;
      ColumnAccumulator& a = acc.features[i];
      if (a.kind == ColumnAccumulator::Kind::numeric)
        add_numbers(b, b.missing[i].data(), b.number[i].data(), a);
      else if (a.kind == ColumnAccumulator::Kind::categorical)
        add_values(b, b.missing[i].data(), b.text[i].data(), a);
    }
    if (acc.label.kind == ColumnAccumulator::Kind::numeric)
      add_numbers(b, nullptr, b.label_number.data(), acc.label);
    else if (acc.label.kind == ColumnAccumulator::Kind::categorical)
      add_values(b, nullptr, b.label_text.data(), acc.label);
  }
  for (ColumnAccumulator& a : acc.features) a.flush();
  acc.label.flush();
  for (const auto& [key, n] : skipped) budget.skip(screen.category_name(key), n);
}

// The quantiles one numeric column needs: its median (for the summary; required when a feature
// imputes it) and the boundaries of its quantile-bucketized features, as ranks of its values.
struct QuantileRequest {
  std::vector<int64_t> ranks;
  std::vector<bool> required;
  std::vector<std::pair<int, size_t>> buckets;  // (feature, index of its first boundary rank)
  std::unique_ptr<RankQuantiles> answers;       // median first
};

void fill_numeric(const ColumnAccumulator& a, const QuantileRequest* q, NumericStats* s) {
  s->set_count(a.moments.count());
  s->set_missing(a.missing);
  if (a.moments.count() > 0) {
    s->set_mean(a.moments.mean());
    s->set_stddev(a.moments.stddev());
    s->set_min(a.moments.min());
    s->set_max(a.moments.max());
    const RankQuantiles::Target& median = q->answers->targets().front();
    s->set_median(median.value);
    s->set_median_rank_error(median.rank_error);
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

TransformState finish(const FeatureSpec& spec, const Accumulators& acc, const std::vector<QuantileRequest>& requests,
                      const QuantileRequest& label_request) {
  TransformState state;
  *state.mutable_spec() = spec;
  state.set_rows(acc.rows);
  int64_t dense = 0;
  for (int i = 0; i < spec.features_size(); ++i) {
    const FeatureColumn& f = spec.features(i);
    const auto owner = static_cast<size_t>(acc.owner[static_cast<size_t>(i)]);
    const ColumnAccumulator& a = acc.features[owner];
    FeatureState* fs = state.add_features();
    fs->set_name(f.name());
    std::string where = str_cat("feature '", f.name(), "'");
    if (a.kind == ColumnAccumulator::Kind::numeric) {
      fill_numeric(a, &requests[owner], fs->mutable_numeric());
      if (a.moments.count() == 0 && f.missing().kind() != MissingPolicy::DEFAULT)
        fail(where, ": no values to compute the ", MissingPolicy::Kind_Name(f.missing().kind()), " imputation from");
    }
    if (f.has_bucketized()) {
      const BucketizedTransform& b = f.bucketized();
      if (!b.boundaries().empty()) {
        for (double x : b.boundaries()) fs->add_boundaries(x);
      } else {
        if (a.moments.count() == 0) fail(where, ": no values to compute quantile buckets from");
        const QuantileRequest& q = requests[owner];
        size_t first = 0;
        for (const auto& [feature, index] : q.buckets)
          if (feature == i) first = index;
        // Equal quantiles (heavy duplicates, few distinct values) give one boundary.
        for (int k = 0; k + 1 < b.num_quantile_buckets(); ++k) {
          const double x = q.answers->targets()[first + static_cast<size_t>(k)].value;
          if (fs->boundaries().empty() || x > *fs->boundaries().rbegin()) fs->add_boundaries(x);
        }
        if (fs->boundaries_size() < b.num_quantile_buckets() - 1)
          state.add_warnings(str_cat(where, ": ", b.num_quantile_buckets(), " quantile buckets asked, but the data gives ",
                                     fs->boundaries_size(), " distinct boundaries (",
                                     a.distinct.overflowed() ? "heavy duplicates" : str_cat(a.distinct.distinct(), " distinct values"),
                                     "), so only ", fs->boundaries_size() + 1, " buckets"));
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
      fill_numeric(acc.label, &label_request, ls->mutable_numeric());
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

// Where analysis reads its rows: a rank's CSV files, on the reader's threads, or one in-memory
// RawRows with its column names, on the calling thread.
struct RowSource {
  std::vector<std::string> files;
  int threads = 1;
  const RawRows* rows = nullptr;
  const std::vector<std::string>* column_names = nullptr;
};

// The columns of the spec's features (-1 for crossed ones) and label (-1: none) among a source's,
// found by index_of (-1 when absent); `data` names the source in errors.
struct BoundColumns {
  std::vector<int> features;
  int label = -1;
};

BoundColumns bind_columns(const FeatureSpec& spec, const std::function<int(const std::string&)>& index_of,
                          const std::string& data) {
  BoundColumns b;
  for (const FeatureColumn& f : spec.features()) {
    if (f.has_crossed()) {
      b.features.push_back(-1);
      continue;
    }
    std::string name = f.has_source() ? f.source() : f.name();
    int c = index_of(name);
    if (c < 0) fail("feature '", f.name(), "': the data (", data, ") has no column '", name, "'");
    b.features.push_back(c);
  }
  if (spec.has_label()) {
    b.label = index_of(spec.label().column());
    if (b.label < 0) fail("feature_spec.label: the data (", data, ") has no column '", spec.label().column(), "'");
  }
  return b;
}

// A source's rows read with the spec's columns and screened exactly as training reads them; visit
// runs on the reader's threads, each call with an accumulator of its own from make(), and all the
// accumulators are returned for merging. progress(chunks) runs under a lock after each chunk.
template <typename Acc>
std::vector<std::unique_ptr<Acc>> scan_rows(const FeatureSpec& spec, const RowSource& source,
                                            std::shared_ptr<io::ErrorBudget> budget, const std::function<std::unique_ptr<Acc>()>& make,
                                            const std::function<void(const RowScreen&, const RawRows&, Acc&)>& visit,
                                            const std::function<void(int64_t)>& progress) {
  std::vector<std::unique_ptr<Acc>> free_list;
  if (source.rows) {
    const std::vector<std::string>& names = *source.column_names;
    const BoundColumns cols = bind_columns(
        spec,
        [&](const std::string& name) {
          auto it = std::find(names.begin(), names.end(), name);
          return it == names.end() ? -1 : static_cast<int>(it - names.begin());
        },
        "rows");
    free_list.push_back(make());
    visit(RowScreen(spec, cols.features, cols.label), *source.rows, *free_list.back());
    progress(1);
    return free_list;
  }
  if (source.files.empty()) return free_list;
  io::CsvOptions csv = csv_options(spec.csv(), source.threads);
  csv.chunk_bytes = kChunkBytes;
  io::CsvReader reader(source.files, csv, std::move(budget));
  const BoundColumns cols =
      bind_columns(spec, [&](const std::string& name) { return reader.column_index(name); }, source.files.front());
  // Only the columns the spec reads are stored (the others are still checked).
  std::vector<int> used;
  for (int c : cols.features)
    if (c >= 0) used.push_back(c);
  if (cols.label >= 0) used.push_back(cols.label);
  reader.select_columns(used);
  const RowScreen screen(spec, cols.features, cols.label);
  // One accumulator per worker thread; merging is exact, so how chunks land on threads does
  // not matter.
  std::mutex mutex;
  int64_t chunks = 0;
  reader.for_each_chunk([&](const io::CsvChunk& chunk) {
    std::unique_ptr<Acc> acc;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!free_list.empty()) {
        acc = std::move(free_list.back());
        free_list.pop_back();
      }
    }
    if (!acc) acc = make();
    visit(screen, CsvRows(chunk), *acc);
    std::lock_guard<std::mutex> lock(mutex);
    free_list.push_back(std::move(acc));
    progress(++chunks);
  });
  return free_list;
}

// What pass one's analyzers of column `a` answer of request `q` (the rest waits for refinement).
void answer_from_pass_one(const ColumnAccumulator& a, QuantileRequest& q) {
  const int64_t n = a.moments.count();
  q.answers = std::make_unique<RankQuantiles>(n, a.moments.min(), a.moments.max(), RankQuantiles::allowed_error(n),
                                              a.distinct, a.sketch, q.ranks, q.required);
}

// The ranks each numeric column needs (see QuantileRequest), answered from pass one where the
// error allows; the rest are refined by resolve_quantiles().
std::vector<QuantileRequest> request_quantiles(const FeatureSpec& spec, const Accumulators& acc) {
  std::vector<QuantileRequest> requests(acc.features.size());
  for (int i = 0; i < spec.features_size(); ++i) {
    const auto owner = static_cast<size_t>(acc.owner[static_cast<size_t>(i)]);
    const ColumnAccumulator& a = acc.features[owner];
    const int64_t n = a.moments.count();
    if (a.kind != ColumnAccumulator::Kind::numeric || n == 0) continue;
    QuantileRequest& q = requests[owner];
    const FeatureColumn& f = spec.features(i);
    if (q.ranks.empty()) {
      q.ranks.push_back((n - 1) / 2);  // the median, numpy's method="lower"
      q.required.push_back(false);
    }
    if (f.missing().kind() == MissingPolicy::MEDIAN) q.required[0] = true;
    if (f.has_bucketized() && f.bucketized().boundaries().empty()) {
      const int buckets = f.bucketized().num_quantile_buckets();
      q.buckets.emplace_back(i, q.ranks.size());
      for (int k = 1; k < buckets; ++k) {  // floor(k (n - 1) / buckets) in exact integers
        q.ranks.push_back(static_cast<int64_t>(static_cast<__int128>(k) * (n - 1) / buckets));
        q.required.push_back(true);
      }
    }
  }
  for (size_t i = 0; i < requests.size(); ++i)
    if (!requests[i].ranks.empty()) answer_from_pass_one(acc.features[i], requests[i]);
  return requests;
}

// Refinement passes over the data until every required quantile is within its rank error.
void resolve_quantiles(const FeatureSpec& spec, const RowSource& source, bool progress,
                       std::vector<QuantileRequest>& requests, Communicator& comm) {
  using Histograms = std::vector<RefinementHistogram>;
  for (int pass = 2;; ++pass) {
    std::vector<size_t> columns;  // the feature (owner) indices refined in this pass
    for (size_t i = 0; i < requests.size(); ++i)
      if (requests[i].answers && !requests[i].answers->done()) columns.push_back(i);
    if (columns.empty()) return;
    if (progress && comm.rank() == 0)
      std::fprintf(stderr, "analyze: pass %d over the data to refine the quantiles of %zu column(s)\n", pass, columns.size());
    auto make = [&] {
      auto h = std::make_unique<Histograms>();
      for (size_t i : columns) h->emplace_back(requests[i].answers->intervals());
      return h;
    };
    auto visit = [&](const RowScreen& screen, const RawRows& rows, Histograms& h) {
      RowScreen::Block b;
      std::vector<double> numbers;
      int64_t ignored = 0;
      for (int64_t begin = 0; begin < rows.rows(); begin += kBlockRows) {
        screen.screen(rows, begin, std::min(begin + kBlockRows, rows.rows()), &b);
        for (size_t c = 0; c < columns.size(); ++c) {
          numbers.clear();
          collect_kept(b, b.missing[columns[c]].data(), b.number[columns[c]].data(), numbers, ignored);
          h[c].add_all(numbers);
        }
      }
    };
    // Bad rows were counted (and the budget enforced) by pass one; the same rows are skipped again.
    auto parts = scan_rows<Histograms>(spec, source, std::make_shared<io::ErrorBudget>(-1), make, visit, [](int64_t) {});
    std::unique_ptr<Histograms> total = make();
    for (const auto& p : parts)
      for (size_t c = 0; c < columns.size(); ++c) (*total)[c].merge((*p)[c]);
    if (comm.size() > 1) {
      RefinementPartial mine;
      for (const RefinementHistogram& h : *total) h.to_proto(mine.add_columns());
      total = make();
      for (const std::string& bytes_of_rank : comm.all_gather(mine.SerializeAsString())) {
        RefinementPartial p;
        if (!p.ParseFromString(bytes_of_rank) || p.columns_size() != static_cast<int>(columns.size()))
          fail(comm.describe(), ": corrupt quantile refinement from a peer");
        for (size_t c = 0; c < columns.size(); ++c)
          (*total)[c].merge(RefinementHistogram::from_proto(p.columns(static_cast<int>(c))));
      }
    }
    for (size_t c = 0; c < columns.size(); ++c) requests[columns[c]].answers->refine((*total)[c]);
  }
}

QuantileRequest label_median(const ColumnAccumulator& label) {
  QuantileRequest q;
  const int64_t n = label.moments.count();
  if (label.kind != ColumnAccumulator::Kind::numeric || n == 0) return q;
  q.ranks = {(n - 1) / 2};
  q.required = {false};
  answer_from_pass_one(label, q);
  return q;
}

// Pass one over the source's rows (with the budget spec.csv().max_bad_rows), the partials of all
// ranks merged, the quantile refinement passes, the state; its warnings printed by rank 0.
TransformState analyze_source(const FeatureSpec& spec, const RowSource& source, bool show_progress, Communicator& comm) {
  auto budget = std::make_shared<io::ErrorBudget>(spec.csv().max_bad_rows());
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  auto progress = [&](int64_t chunks) {
    const auto now = std::chrono::steady_clock::now();
    if (show_progress && comm.rank() == 0 && now - last_report >= std::chrono::seconds(5)) {
      last_report = now;
      std::fprintf(stderr, "analyze: %lld chunks, %.1f s\n", static_cast<long long>(chunks),
                   std::chrono::duration<double>(now - start).count());
    }
  };
  Accumulators total(spec);
  for (const auto& a : scan_rows<Accumulators>(
           spec, source, budget, [&] { return std::make_unique<Accumulators>(spec); },
           [&](const RowScreen& screen, const RawRows& rows, Accumulators& acc) { accumulate(screen, rows, *budget, acc); },
           progress))
    total.merge(*a);
  // Ranks exchange their partials and every rank merges them all (exactly, so the order and
  // grouping do not matter); a single process uses its own accumulators as they are.
  int64_t bad_rows = budget->count();
  std::map<std::string, int64_t> left_out = budget->left_out();
  Accumulators merged(spec);
  if (comm.size() > 1) {
    AnalysisPartial part;
    for (const auto& f : total.features) f.to_proto(part.add_features());
    total.label.to_proto(part.mutable_label());
    part.set_rows(total.rows);
    part.set_bad_rows(bad_rows);
    part.mutable_rows_left_out()->insert(left_out.begin(), left_out.end());
    bad_rows = 0;
    left_out.clear();
    for (const std::string& bytes_of_rank : comm.all_gather(part.SerializeAsString())) {
      AnalysisPartial p;
      if (!p.ParseFromString(bytes_of_rank)) fail(comm.describe(), ": corrupt analysis partial from a peer");
      for (int i = 0; i < p.features_size(); ++i) merged.features[i].merge_proto(p.features(i));
      merged.label.merge_proto(p.label());
      merged.rows += p.rows();
      bad_rows += p.bad_rows();
      for (const auto& [category, n] : p.rows_left_out()) left_out[category] += n;
    }
  }
  const Accumulators& all = comm.size() > 1 ? merged : total;
  std::vector<QuantileRequest> requests = request_quantiles(spec, all);
  resolve_quantiles(spec, source, show_progress, requests, comm);
  TransformState state = finish(spec, all, requests, label_median(all.label));
  state.set_bad_rows(bad_rows);
  state.mutable_rows_left_out()->insert(left_out.begin(), left_out.end());
  if (comm.rank() == 0)
    for (const std::string& w : state.warnings()) std::fprintf(stderr, "kiln: warning: %s\n", w.c_str());
  return state;
}

}  // namespace

TransformState analyze_dataset(const FeatureSpec& spec, const AnalysisOptions& options, Communicator& comm) {
  validate_feature_spec(spec);
  std::vector<std::string> files = io::expand_file_patterns(options.files);
  RowSource mine;
  mine.threads = options.threads;
  for (size_t i = 0; i < files.size(); ++i)
    if (static_cast<int>(i % static_cast<size_t>(comm.size())) == comm.rank()) mine.files.push_back(files[i]);
  TransformState state = analyze_source(spec, mine, options.progress, comm);
  for (const auto& f : files) state.add_files(f);
  return state;
}

TransformState analyze_rows(const FeatureSpec& spec, const RawRows& rows, const std::vector<std::string>& column_names) {
  validate_feature_spec(spec);
  RowSource source;
  source.rows = &rows;
  source.column_names = &column_names;
  LocalCommunicator local;
  return analyze_source(spec, source, false, local);
}

}  // namespace kiln::transform
