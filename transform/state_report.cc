#include "transform/state_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/error.h"
#include "io/error_budget.h"
#include "transform/distances.h"
#include "transform/quantile_sketch.h"

namespace kiln::transform {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

const char* kind_of(const FeatureColumn& f) {
  if (f.has_numeric()) return "numeric";
  if (f.has_bucketized()) return "bucketized";
  if (f.has_crossed()) return "crossed";
  return f.categorical().has_hash() ? "hashed" : "vocabulary";
}

// Category frequencies normalised to sum 1, the values outside the kept vocabulary in one bucket.
std::map<std::string, double> frequencies(const CategoricalStats& s) {
  std::map<std::string, double> f;
  double total = static_cast<double>(std::max<int64_t>(s.count(), 1));
  for (int i = 0; i < s.vocabulary_size(); ++i) f[s.vocabulary(i)] = static_cast<double>(s.frequencies(i)) / total;
  if (s.oov_count() > 0) f["\x01<other values>"] = static_cast<double>(s.oov_count()) / total;
  return f;
}

}  // namespace

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
      stats = "mean " + fmt("%.4g", n.mean()) + " std " + fmt("%.4g", n.stddev()) + " min " + fmt("%.4g", n.min()) +
              " median " + fmt("%.6g", n.median()) + " max " + fmt("%.4g", n.max());
      // A summary-only median of a high-cardinality column comes from the sketch: say how loose.
      if (n.median_rank_error() > n.count() / 1000)
        stats += " (median rank error <= " + fmt("%.2g", 100.0 * static_cast<double>(n.median_rank_error()) /
                                                            static_cast<double>(n.count())) + "% of rows)";
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
        stats += ", OOV " + fmt("%.2f%%", oov);
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
    describe(state.features(i).name(), kind_of(state.spec().features(i)), state.features(i), &state.spec().features(i));
  if (state.has_label()) describe(state.label().name() + " (label)", "label", state.label(), nullptr);
  for (const std::string& w : state.warnings()) out += "warning: " + w + "\n";
  return out;
}

std::vector<FeatureDistance> compare_states(const TransformState& a, const TransformState& b) {
  std::map<std::string, const FeatureState*> in_b;
  for (const FeatureState& f : b.features()) in_b[f.name()] = &f;
  std::vector<FeatureDistance> out;
  for (const FeatureState& fa : a.features()) {
    auto it = in_b.find(fa.name());
    if (it == in_b.end()) fail("feature '", fa.name(), "' is in the first state only");
    const FeatureState& fb = *it->second;
    if (fa.has_numeric() && fb.has_numeric()) {
      double js = jensen_shannon_divergence(QuantileSketch::from_proto(fa.numeric().sketch()),
                                            QuantileSketch::from_proto(fb.numeric().sketch()));
      out.push_back({fa.name(), "JS", js});
    } else if (fa.has_categorical() && fb.has_categorical()) {
      auto pa = frequencies(fa.categorical()), pb = frequencies(fb.categorical());
      double d = 0;
      for (const auto& [k, v] : pa) d = std::max(d, std::abs(v - (pb.count(k) ? pb[k] : 0.0)));
      for (const auto& [k, v] : pb) d = std::max(d, std::abs(v - (pa.count(k) ? pa[k] : 0.0)));
      out.push_back({fa.name(), "L-inf", d});
    }
    in_b.erase(it);
  }
  if (!in_b.empty()) fail("feature '", in_b.begin()->first, "' is in the second state only");
  return out;
}

std::string format_distances(const std::vector<FeatureDistance>& d) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-22s %-6s %s\n", "feature", "measure", "distance");
  out += line;
  for (const auto& x : d) {
    std::snprintf(line, sizeof line, "%-22s %-6s %.6f\n", x.feature.c_str(), x.measure.c_str(), x.value);
    out += line;
  }
  return out;
}

}  // namespace kiln::transform
