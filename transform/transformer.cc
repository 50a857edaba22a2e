#include "transform/transformer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "transform/row_screen.h"
#include "transform/stable_hash.h"

namespace kiln::transform {

namespace {

// Heterogeneous lookup: find a string_view key without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocabulary = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

}  // namespace

FeatureColumn::Output resolved_output(const FeatureColumn& f) {
  if (f.output() != FeatureColumn::AUTO) return f.output();
  return f.has_numeric() ? FeatureColumn::DENSE : FeatureColumn::EMBEDDING;
}

void validate_feature_spec(const FeatureSpec& spec) {
  if (spec.features().empty()) fail("feature_spec.features is empty");
  std::map<std::string, const FeatureColumn*> by_name;
  for (int i = 0; i < spec.features_size(); ++i) {
    const FeatureColumn& f = spec.features(i);
    std::string where = str_cat("feature_spec.features[", i, "] (", f.name(), ")");
    if (f.name().empty()) fail("feature_spec.features[", i, "].name is empty");
    if (by_name.count(f.name())) fail(where, ": duplicate feature name");
    if (f.kind_case() == FeatureColumn::KIND_NOT_SET)
      fail(where, ": set one of numeric, bucketized, categorical, crossed");
    auto out = resolved_output(f);
    if (out == FeatureColumn::DENSE && !f.has_numeric()) fail(where, ": output DENSE is only for numeric features");
    if (f.has_numeric() && out != FeatureColumn::DENSE) fail(where, ": a numeric feature's output must be DENSE");
    if (f.has_bucketized()) {
      const auto& b = f.bucketized();
      if (b.boundaries().empty() == (b.num_quantile_buckets() <= 0))
        fail(where, ": bucketized needs either boundaries or num_quantile_buckets (not both)");
      for (int k = 1; k < b.boundaries_size(); ++k)
        if (!(b.boundaries(k) > b.boundaries(k - 1))) fail(where, ": bucketized.boundaries must be strictly ascending");
    }
    if (f.has_categorical()) {
      const auto& c = f.categorical();
      if (c.has_hash() && c.hash().buckets() <= 0) fail(where, ": categorical.hash.buckets must be > 0");
      if (c.has_vocabulary() && c.vocabulary().num_oov_buckets() < 1)
        fail(where, ": categorical.vocabulary.num_oov_buckets must be >= 1 (unseen values need a bucket)");
      if (!c.has_hash() && !c.has_vocabulary()) fail(where, ": categorical needs vocabulary {} or hash {}");
    }
    if (f.has_crossed()) {
      const auto& x = f.crossed();
      if (x.columns_size() < 2) fail(where, ": crossed.columns needs at least two features");
      if (x.hash_buckets() <= 0) fail(where, ": crossed.hash_buckets must be > 0");
      for (const std::string& c : x.columns()) {
        auto it = by_name.find(c);
        if (it == by_name.end())
          fail(where, ": crossed column '", c, "' must name an earlier bucketized or categorical feature");
        const FeatureColumn& g = *it->second;
        if (!g.has_bucketized() && !g.has_categorical())
          fail(where, ": crossed column '", c, "' is not bucketized or categorical");
        if (g.has_categorical() && g.categorical().has_multi_value_delimiter())
          fail(where, ": crossed column '", c, "' is multi-valued; crosses take single-valued features");
      }
    }
    if (f.missing().kind() == MissingPolicy::MEAN || f.missing().kind() == MissingPolicy::MEDIAN)
      if (!f.has_numeric() && !f.has_bucketized()) fail(where, ": MEAN/MEDIAN imputation is for numeric features");
    by_name[f.name()] = &f;
  }
  if (spec.has_label() && spec.label().column().empty()) fail("feature_spec.label.column is empty");
}

struct Transformer::Feature {
  enum class Kind { numeric, bucketized, vocabulary, hash, crossed };
  const FeatureColumn* spec = nullptr;
  Kind kind = Kind::numeric;
  FeatureColumn::Output output = FeatureColumn::DENSE;
  int col = -1;
  std::string delimiter;
  bool drop_if_missing = false, indicator = false;
  double fill = 0;  // numeric value used when missing
  bool has_clip_min = false, has_clip_max = false;
  double clip_min = 0, clip_max = 0, shift = 0, mul = 1;
  bool log1p = false;
  std::vector<double> boundaries;
  Vocabulary vocab;
  int64_t vocab_size = 0, oov_buckets = 1, hash_buckets = 0;
  std::string default_category;
  bool has_default_category = false;
  std::vector<int> components;
  int64_t id_space = 0, dense_offset = -1, indicator_offset = -1, ids_slot = -1;
};

Transformer::Transformer(const TransformState& state, const std::vector<std::string>& source_columns,
                         bool need_label)
    : state_(state) {
  const FeatureSpec& spec = state_.spec();  // features_ point into it: our copy, not the argument
  validate_feature_spec(spec);
  if (state.features_size() != spec.features_size())
    fail("transform state has ", state.features_size(), " features but its spec has ", spec.features_size());
  auto column = [&](const std::string& name, const std::string& what) {
    auto it = std::find(source_columns.begin(), source_columns.end(), name);
    if (it == source_columns.end()) fail(what, ": the data has no column '", name, "'");
    return static_cast<int>(it - source_columns.begin());
  };
  std::map<std::string, int> index;
  int64_t dense = 0, slots = 0;
  for (int i = 0; i < spec.features_size(); ++i) {
    const FeatureColumn& f = spec.features(i);
    const FeatureState& st = state.features(i);
    std::string where = str_cat("feature '", f.name(), "'");
    auto feat = std::make_unique<Feature>();
    feat->spec = &f;
    feat->output = resolved_output(f);
    feat->id_space = st.id_space();
    const MissingPolicy& mp = f.missing();
    feat->drop_if_missing = mp.kind() == MissingPolicy::DROP_ROW;
    feat->indicator = mp.indicator();
    if (!f.has_crossed()) feat->col = column(f.has_source() ? f.source() : f.name(), where);
    if (f.has_numeric() || f.has_bucketized()) {
      const NumericStats& ns = st.numeric();
      feat->fill = mp.kind() == MissingPolicy::MEAN ? ns.mean() : mp.kind() == MissingPolicy::MEDIAN ? ns.median()
                                                                                                     : mp.default_value();
    }
    if (f.has_numeric()) {
      const NumericTransform& n = f.numeric();
      feat->kind = Feature::Kind::numeric;
      feat->has_clip_min = n.has_clip_min();
      feat->has_clip_max = n.has_clip_max();
      feat->clip_min = n.clip_min();
      feat->clip_max = n.clip_max();
      const NumericStats& ns = st.numeric();
      switch (n.scaling()) {
        case NumericTransform::IDENTITY: break;
        case NumericTransform::Z_SCORE:
          feat->shift = ns.mean();
          feat->mul = ns.stddev() > 0 ? 1.0 / ns.stddev() : 1.0;
          break;
        case NumericTransform::MIN_MAX:
          feat->shift = ns.min();
          feat->mul = ns.max() > ns.min() ? 1.0 / (ns.max() - ns.min()) : 0.0;
          break;
        case NumericTransform::LOG1P: feat->log1p = true; break;
      }
    } else if (f.has_bucketized()) {
      feat->kind = Feature::Kind::bucketized;
      feat->boundaries.assign(st.boundaries().begin(), st.boundaries().end());
    } else if (f.has_categorical()) {
      const CategoricalTransform& c = f.categorical();
      feat->delimiter = c.multi_value_delimiter();
      feat->has_default_category = mp.has_default_category();
      feat->default_category = mp.default_category();
      if (c.has_hash()) {
        feat->kind = Feature::Kind::hash;
        feat->hash_buckets = c.hash().buckets();
      } else {
        feat->kind = Feature::Kind::vocabulary;
        const CategoricalStats& cs = st.categorical();
        for (int k = 0; k < cs.vocabulary_size(); ++k) feat->vocab.emplace(cs.vocabulary(k), k);
        feat->vocab_size = cs.vocabulary_size();
        feat->oov_buckets = c.vocabulary().num_oov_buckets();
      }
    } else {
      feat->kind = Feature::Kind::crossed;
      feat->hash_buckets = f.crossed().hash_buckets();
      for (const std::string& c : f.crossed().columns()) feat->components.push_back(index.at(c));
    }
    if (feat->id_space <= 0 && feat->kind != Feature::Kind::numeric)
      fail("transform state for ", where, " has no id space (was it analyzed with this spec?)");
    if (feat->output == FeatureColumn::DENSE) {
      feat->dense_offset = dense++;
    } else if (feat->output == FeatureColumn::ONE_HOT) {
      feat->dense_offset = dense;
      dense += feat->id_space;
    } else {
      feat->ids_slot = slots++;
    }
    if (feat->indicator) feat->indicator_offset = dense++;
    index[f.name()] = i;
    features_.push_back(std::move(feat));
  }
  if (dense != state.dense_width())
    fail("transform state dense_width ", state.dense_width(), " disagrees with its spec (", dense, ")");
  if (need_label) {
    if (!spec.has_label()) fail("feature_spec.label is not set: training needs a label column");
    label_col_ = column(spec.label().column(), "feature_spec.label");
  }
  std::vector<int> cols;
  for (const auto& f : features_) cols.push_back(f->col);
  screen_ = std::make_unique<RowScreen>(spec, std::move(cols), label_col_);
  if (!spec.key_column().empty()) {
    auto it = std::find(source_columns.begin(), source_columns.end(), spec.key_column());
    // The key is optional in requests: a client may send it or not.
    if (it != source_columns.end()) key_col_ = static_cast<int>(it - source_columns.begin());
  }
}

Transformer::~Transformer() = default;

std::vector<InputSpec> model_inputs(const TransformState& state) {
  std::vector<InputSpec> out;
  InputSpec dense;
  dense.set_name("dense");
  dense.add_shape(std::max<int64_t>(state.dense_width(), 1));
  out.push_back(dense);
  for (int i = 0; i < state.spec().features_size(); ++i) {
    const FeatureColumn& f = state.spec().features(i);
    if (resolved_output(f) != FeatureColumn::EMBEDDING) continue;
    InputSpec in;
    in.set_name(f.name());
    in.set_kind(InputSpec::IDS);
    in.add_shape(state.features(i).id_space());
    out.push_back(in);
  }
  return out;
}

namespace {

// The per-row result of one feature before it is written out.
struct Cell {
  double value = 0;           // numeric value after clip and scaling
  bool missing = false;
  std::vector<int64_t> ids;   // categorical, bucketized, crossed
};

}  // namespace

// What apply() builds a batch in. A server calls apply() for every request, with a few rows:
// kept per thread, these vectors keep their storage and the request path allocates only its
// outputs (they were ~40% of a babyweight request's allocations).
struct Transformer::Scratch {
  std::vector<float> dense;
  std::vector<std::vector<int64_t>> ids, offsets;
  std::vector<Cell> cells;
  RowScreen::Block block;
};

ModelInputs Transformer::apply(const RawRows& rows, io::ErrorBudget* budget) const {
  // Large inputs (training's chunks) get scratch of their own, so no thread keeps their size.
  constexpr int64_t kReusedRows = 256;
  if (rows.rows() > kReusedRows) {
    Scratch scratch;
    return apply(rows, budget, scratch);
  }
  thread_local Scratch scratch;
  return apply(rows, budget, scratch);
}

ModelInputs Transformer::apply(const RawRows& rows, io::ErrorBudget* budget, Scratch& scratch) const {
  const int64_t n = rows.rows();
  const int64_t width = std::max<int64_t>(dense_width(), 1);
  const FeatureSpec& spec = state_.spec();
  std::vector<float>& dense = scratch.dense;
  dense.clear();
  dense.reserve(static_cast<size_t>(n * width));
  std::vector<std::vector<int64_t>>& ids = scratch.ids;
  std::vector<std::vector<int64_t>>& offsets = scratch.offsets;
  ids.resize(features_.size());
  offsets.resize(features_.size());
  for (auto& v : ids) v.clear();
  for (auto& o : offsets) o.assign(1, 0);
  std::vector<float> labels_f;
  std::vector<int32_t> labels_i;
  ModelInputs out;
  out.source_rows.reserve(static_cast<size_t>(n));
  std::vector<Cell>& cells = scratch.cells;
  cells.resize(features_.size());
  const bool multiclass = spec.label().type() == LabelSpec::MULTICLASS;
  Vocabulary label_vocab;
  if (label_col_ >= 0 && multiclass)
    for (int k = 0; k < state_.label().categorical().vocabulary_size(); ++k)
      label_vocab.emplace(state_.label().categorical().vocabulary(k), k);

  auto bad = [&](int64_t row, int col, const std::string& reason, const std::string& category) {
    if (!budget) fail(rows.where(row, col), ": ", reason);
    io::BadRow br;
    br.file = rows.where(row, col);
    br.reason = reason;
    budget->add(br, category);
  };

  // Which rows are used, and their numbers, come from the screen that analysis used too; it
  // works a block of rows ahead.
  constexpr int64_t kBlockRows = 256;
  RowScreen::Block& block = scratch.block;
  block.begin = block.size = 0;  // screened again from row 0
  std::map<int, int64_t> skipped;  // dropped rows by RowScreen::category_key, given to the budget at the end
  for (int64_t r = 0; r < n; ++r) {
    if (r == block.begin + block.size) screen_->screen(rows, r, std::min(n, r + kBlockRows), &block);
    const size_t k = static_cast<size_t>(r - block.begin);
    if (block.verdict[k] != RowScreen::Verdict::kept) {
      // A drop (DROP_ROW, a skipped missing label) is expected, not a malformed row: counted by
      // the budget, an error only without one (serving).
      const auto offset = static_cast<int64_t>(k);
      if (block.verdict[k] == RowScreen::Verdict::bad || !budget)
        bad(r, screen_->column_of(block, offset), screen_->reason(rows, block, offset), screen_->category(block, offset));
      else
        ++skipped[screen_->category_key(block, offset)];
      continue;
    }
    for (size_t i = 0; i < features_.size(); ++i) {
      const Feature& f = *features_[i];
      Cell& c = cells[i];
      c.ids.clear();
      c.missing = f.col >= 0 && block.missing[i][k];
      switch (f.kind) {
        case Feature::Kind::numeric:
        case Feature::Kind::bucketized: {
          double x = c.missing ? f.fill : block.number[i][k];
          if (f.kind == Feature::Kind::bucketized) {
            c.ids.push_back(std::upper_bound(f.boundaries.begin(), f.boundaries.end(), x) - f.boundaries.begin());
            break;
          }
          if (f.has_clip_min) x = std::max(x, f.clip_min);
          if (f.has_clip_max) x = std::min(x, f.clip_max);
          c.value = f.log1p ? std::log1p(std::max(x, 0.0)) : (x - f.shift) * f.mul;
          break;
        }
        case Feature::Kind::vocabulary:
        case Feature::Kind::hash: {
          auto id_of = [&](std::string_view v) -> int64_t {
            if (f.kind == Feature::Kind::hash) return static_cast<int64_t>(stable_hash(v) % static_cast<uint64_t>(f.hash_buckets));
            auto it = f.vocab.find(v);
            if (it != f.vocab.end()) return it->second;
            return f.vocab_size + static_cast<int64_t>(stable_hash(v) % static_cast<uint64_t>(f.oov_buckets));
          };
          if (c.missing) {
            // Missing: the default category when set; else an empty bag for a multi-valued column,
            // the first OOV bucket (or the hash of "") for a single-valued one.
            if (f.has_default_category)
              c.ids.push_back(id_of(f.default_category));
            else if (f.delimiter.empty())
              c.ids.push_back(f.kind == Feature::Kind::hash ? id_of("") : f.vocab_size);
          } else {
            for_each_value(block.text[i][k], f.delimiter, [&](std::string_view v) { c.ids.push_back(id_of(v)); });
          }
          break;
        }
        case Feature::Kind::crossed: {
          uint64_t h = 0x6b696c6e;  // "kiln": a fixed start so a cross of ids is stable
          for (int comp : f.components) h = stable_hash_combine(h, static_cast<uint64_t>(cells[comp].ids.at(0)));
          c.ids.push_back(static_cast<int64_t>(h % static_cast<uint64_t>(f.hash_buckets)));
          break;
        }
      }
    }
    if (label_col_ >= 0) {
      std::string_view raw = block.label_text[k];
      if (multiclass) {
        auto it = label_vocab.find(raw);
        if (it == label_vocab.end()) {
          bad(r, label_col_, str_cat("label '", raw, "' was not seen during analysis"), "label not seen in analysis");
          continue;
        }
        labels_i.push_back(static_cast<int32_t>(it->second));
      } else if (!screen_->numeric_label()) {  // BINARY with positive_values
        const auto& pos = spec.label().positive_values();
        labels_f.push_back(std::find(pos.begin(), pos.end(), raw) != pos.end() ? 1.0f : 0.0f);
      } else {
        const double y = block.label_number[k];
        labels_f.push_back(spec.label().type() == LabelSpec::BINARY ? (y > 0.5 ? 1.0f : 0.0f) : static_cast<float>(y));
      }
    }
    size_t base = dense.size();
    dense.resize(base + static_cast<size_t>(width), 0.0f);
    float* row = dense.data() + base;
    for (size_t i = 0; i < features_.size(); ++i) {
      const Feature& f = *features_[i];
      const Cell& c = cells[i];
      if (f.output == FeatureColumn::DENSE) {
        row[f.dense_offset] = static_cast<float>(c.value);
      } else if (f.output == FeatureColumn::ONE_HOT) {
        for (int64_t id : c.ids) row[f.dense_offset + id] = 1.0f;
      } else {
        ids[i].insert(ids[i].end(), c.ids.begin(), c.ids.end());
        offsets[i].push_back(static_cast<int64_t>(ids[i].size()));
      }
      if (f.indicator) row[f.indicator_offset] = c.missing ? 1.0f : 0.0f;
    }
    if (key_col_ >= 0) out.keys.emplace_back(rows.field(r, key_col_));
    out.source_rows.push_back(r);
  }

  const int64_t b = static_cast<int64_t>(out.source_rows.size());
  out.batch = b;
  out.dense = Tensor::empty(Shape{b, width}, DType::f32);
  std::copy(dense.begin(), dense.end(), out.dense.data<float>());
  for (size_t i = 0; i < features_.size(); ++i) {
    const Feature& f = *features_[i];
    if (f.output != FeatureColumn::EMBEDDING) continue;
    IdsInput in;
    in.name = f.spec->name();
    in.id_space = f.id_space;
    in.ids = Tensor::empty(Shape{std::max<int64_t>(static_cast<int64_t>(ids[i].size()), 1)}, DType::i64);
    std::copy(ids[i].begin(), ids[i].end(), in.ids.data<int64_t>());
    in.offsets = Tensor::empty(Shape{b + 1}, DType::i64);
    std::copy(offsets[i].begin(), offsets[i].end(), in.offsets.data<int64_t>());
    out.ids.push_back(std::move(in));
  }
  if (label_col_ >= 0) {
    if (multiclass) {
      out.label = Tensor::empty(Shape{b}, DType::i32);
      std::copy(labels_i.begin(), labels_i.end(), out.label.data<int32_t>());
    } else {
      out.label = Tensor::empty(Shape{b}, DType::f32);
      std::copy(labels_f.begin(), labels_f.end(), out.label.data<float>());
    }
  }
  for (const auto& [key, count] : skipped) budget->skip(screen_->category_name(key), count);
  return out;
}

}  // namespace kiln::transform
