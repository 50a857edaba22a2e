#include "transform/state_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/error.h"
#include "io/error_budget.h"
#include "transform/distances.h"
#include "transform/number_text.h"
#include "transform/quantile_sketch.h"

namespace kiln::transform {

const char* feature_kind(const FeatureColumn& f) {
  if (f.has_numeric()) return "numeric";
  if (f.has_bucketized()) return "bucketized";
  if (f.has_crossed()) return "crossed";
  return f.categorical().has_hash() ? "hashed" : "vocabulary";
}

std::string summarize_state(const TransformState& state) {
  const std::map<std::string, int64_t> left_out(state.rows_left_out().begin(), state.rows_left_out().end());
  std::string out = str_cat("rows ", state.rows(), ", ", io::describe_left_out(left_out), ", files ", state.files_size(),
                            ", dense width ", state.dense_width(), "\n");
  char line[512];
  std::snprintf(line, sizeof line, "%-22s %-10s %10s %8s  %s\n", "feature", "kind", "count", "missing", "statistics");
  out += line;
  auto describe = [&](const std::string& name, const char* kind, const FeatureState& fs, const FeatureColumn* f) {
    std::string stats;
    int64_t count = 0, missing = 0;
    if (fs.has_numeric()) {
      const NumericStats& n = fs.numeric();
      count = n.count();
      missing = n.missing();
      stats = "mean " + number_text("%.4g", n.mean()) + " std " + number_text("%.4g", n.stddev()) + " min " +
              number_text("%.4g", n.min()) + " median " + number_text("%.6g", n.median()) + " max " +
              number_text("%.4g", n.max());
      // A summary-only median of a high-cardinality column comes from the sketch: say how loose.
      if (n.median_rank_error() > n.count() / 1000)
        stats += " (median rank error <= " +
                 number_text("%.2g", 100.0 * static_cast<double>(n.median_rank_error()) /
                                         static_cast<double>(n.count())) +
                 "% of rows)";
      if (fs.boundaries_size() > 0) stats += str_cat(", ", fs.boundaries_size() + 1, " buckets");
    } else if (fs.has_categorical()) {
      const CategoricalStats& c = fs.categorical();
      count = c.count();
      missing = c.missing();
      bool hashed = f && f->has_categorical() && f->categorical().has_hash();
      stats = str_cat(c.distinct(), " distinct");
      if (!hashed) {
        stats += str_cat(", vocabulary ", c.vocabulary_size());
        double oov = c.count() > 0 ? 100.0 * static_cast<double>(c.oov_count()) / static_cast<double>(c.count()) : 0;
        stats += ", OOV " + number_text("%.2f%%", oov);
      }
      stats += ", top:";
      for (int i = 0; i < std::min(3, c.vocabulary_size()); ++i)
        stats += str_cat(" '", c.vocabulary(i), "' ", c.frequencies(i));
    } else {
      stats = str_cat(fs.id_space(), " hash buckets");
    }
    std::snprintf(line, sizeof line, "%-22s %-10s %10lld %8lld  %s\n", name.c_str(), kind, static_cast<long long>(count),
                  static_cast<long long>(missing), stats.c_str());
    out += line;
  };
  for (int i = 0; i < state.features_size(); ++i)
    describe(state.features(i).name(), feature_kind(state.spec().features(i)), state.features(i),
             &state.spec().features(i));
  if (state.has_label()) describe(state.label().name() + " (label)", "label", state.label(), nullptr);
  for (const std::string& w : state.warnings()) out += "warning: " + w + "\n";
  return out;
}

std::optional<FeatureDistance> feature_distance(const FeatureState& baseline, const FeatureState& other) {
  const std::string& name = baseline.name();
  if (baseline.has_numeric() != other.has_numeric() || baseline.has_categorical() != other.has_categorical())
    fail("feature '", name, "' has numeric statistics in one state and categorical ones in the other");
  if (baseline.has_numeric()) {
    const QuantileSketch a = QuantileSketch::from_proto(baseline.numeric().sketch());
    const QuantileSketch b = QuantileSketch::from_proto(other.numeric().sketch());
    if (a.alpha() != b.alpha())
      fail("feature '", name, "': the states' quantile sketches differ in accuracy (alpha ", a.alpha(), " and ",
           b.alpha(), ")");
    return FeatureDistance{name, "JS", jensen_shannon_divergence(a, b)};
  }
  if (baseline.has_categorical())
    return FeatureDistance{name, "L-inf",
                           l_infinity_distance(category_shares(baseline.categorical(), other.categorical()))};
  return std::nullopt;  // crossed: no statistics
}

std::vector<FeaturePair> match_features(const TransformState& a, const TransformState& b) {
  std::map<std::string, const FeatureState*> in_b;
  for (const FeatureState& f : b.features()) in_b[f.name()] = &f;
  std::vector<FeaturePair> out;
  for (const FeatureState& fa : a.features()) {
    auto it = in_b.find(fa.name());
    if (it == in_b.end()) fail("feature '", fa.name(), "' is in the first state only");
    out.push_back({&fa, it->second});
    in_b.erase(it);
  }
  if (!in_b.empty()) fail("feature '", in_b.begin()->first, "' is in the second state only");
  if (a.has_label() && b.has_label()) out.push_back({&a.label(), &b.label(), true});
  return out;
}

std::vector<FeatureDistance> compare_states(const TransformState& a, const TransformState& b) {
  std::vector<FeatureDistance> out;
  for (const FeaturePair& p : match_features(a, b))
    if (auto d = feature_distance(*p.a, *p.b)) {
      if (p.label) d->feature += " (label)";
      out.push_back(*d);
    }
  return out;
}

std::string format_distances(const std::vector<FeatureDistance>& d, double threshold) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-22s %-6s %s\n", "feature", "measure", "distance");
  out += line;
  for (const auto& x : d) {
    std::snprintf(line, sizeof line, "%-22s %-6s %.6f", x.feature.c_str(), x.measure.c_str(), x.value);
    out += line;
    out += x.value > threshold ? "  over " + number_text("%g", threshold) + "\n" : "\n";
  }
  return out;
}

}  // namespace kiln::transform
