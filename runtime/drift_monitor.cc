#include "runtime/drift_monitor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io/number_parse.h"
#include "transform/distances.h"

namespace kiln::runtime {

struct DriftMonitor::Feature {
  std::string name;
  int col = -1;
  bool numeric = false;
  std::string delimiter;
  // numeric
  transform::QuantileSketch training_sketch, live_sketch;
  // categorical: training frequencies over the vocabulary, then one bucket for other values
  std::vector<double> training_freq;
  std::vector<int64_t> live_counts;
  std::vector<std::string> vocabulary;
  std::unordered_map<std::string_view, size_t> index;  // views into `vocabulary`
  int64_t live_total = 0;
};

DriftMonitor::DriftMonitor(const TransformState& state, const InputSchema& schema) {
  for (int i = 0; i < state.features_size(); ++i) {
    const FeatureState& fs = state.features(i);
    const FeatureColumn& spec = state.spec().features(i);
    if (spec.has_crossed()) continue;
    std::string source = spec.source().empty() ? spec.name() : spec.source();
    int col = schema.find(source);
    if (col < 0) continue;
    auto f = std::make_unique<Feature>();
    f->name = fs.name();
    f->col = col;
    if (fs.has_numeric() && fs.numeric().has_sketch()) {
      f->numeric = true;
      f->training_sketch = transform::QuantileSketch::from_proto(fs.numeric().sketch());
      f->live_sketch = transform::QuantileSketch(f->training_sketch.alpha());
    } else if (fs.has_categorical() && spec.categorical().has_vocabulary()) {
      const CategoricalStats& c = fs.categorical();
      const double total = static_cast<double>(std::max<int64_t>(c.count(), 1));
      f->vocabulary.assign(c.vocabulary().begin(), c.vocabulary().end());
      for (int k = 0; k < c.vocabulary_size(); ++k) {
        f->training_freq.push_back(static_cast<double>(c.frequencies(k)) / total);
        f->index.emplace(f->vocabulary[static_cast<size_t>(k)], static_cast<size_t>(k));
      }
      f->training_freq.push_back(static_cast<double>(c.oov_count()) / total);
      f->live_counts.assign(f->training_freq.size(), 0);
      f->delimiter = spec.categorical().multi_value_delimiter();
    } else {
      continue;  // hashed categories keep no frequencies to compare with
    }
    features_.push_back(std::move(f));
  }
}

DriftMonitor::~DriftMonitor() = default;

void DriftMonitor::observe(const transform::RawRows& rows) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& f : features_) {
    for (int64_t r = 0; r < rows.rows(); ++r) {
      if (rows.is_na(r, f->col)) continue;
      std::string_view v = rows.field(r, f->col);
      if (f->numeric) {
        double x;
        if (io::parse_double(v, &x) && std::isfinite(x)) {
          f->live_sketch.add(x);
          ++f->live_total;
        }
        continue;
      }
      transform::for_each_value(v, f->delimiter, [&](std::string_view piece) {
        auto it = f->index.find(piece);
        ++f->live_counts[it == f->index.end() ? f->live_counts.size() - 1 : it->second];
        ++f->live_total;
      });
    }
  }
}

std::vector<DriftMonitor::Drift> DriftMonitor::drift() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Drift> out;
  for (const auto& f : features_) {
    Drift d{f->name, f->numeric ? "js" : "linf", 0, f->live_total};
    if (f->live_total > 0) {
      if (f->numeric) {
        d.value = transform::jensen_shannon_divergence(f->training_sketch, f->live_sketch);
      } else {
        d.oov_count = f->live_counts.back();
        for (size_t k = 0; k < f->live_counts.size(); ++k)
          d.value = std::max(d.value, std::abs(f->training_freq[k] - static_cast<double>(f->live_counts[k]) /
                                                                         static_cast<double>(f->live_total)));
      }
    } else if (!f->numeric) {
      d.oov_count = 0;
    }
    out.push_back(std::move(d));
  }
  return out;
}

void DriftMonitor::render(std::string& out, std::string& counts, std::string& oov, const std::string& labels) const {
  for (const Drift& d : drift()) {
    std::string l = labels + ",feature=\"" + d.feature + "\"";
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.6g", d.value);
    out += "kiln_feature_drift{" + l + ",measure=\"" + d.measure + "\"} " + buf + "\n";
    counts += "kiln_feature_live_values_total{" + l + "} " + std::to_string(d.live_count) + "\n";
    if (d.oov_count >= 0) oov += "kiln_feature_oov_values_total{" + l + "} " + std::to_string(d.oov_count) + "\n";
  }
}

}  // namespace kiln::runtime
