#include "runtime/metrics.h"

#include <algorithm>
#include <cstdio>

namespace kiln::runtime {

namespace {

size_t status_slot(int status) {
  for (size_t i = 0; i + 1 < VersionMetrics::kStatuses.size(); ++i)
    if (VersionMetrics::kStatuses[i] == status) return i;
  return VersionMetrics::kStatuses.size() - 1;
}

std::string fmt_double(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void render_status_counts(std::string& out, const std::string& labels,
                          const std::array<std::atomic<uint64_t>, VersionMetrics::kStatuses.size()>& counts) {
  for (size_t i = 0; i < counts.size(); ++i) {
    uint64_t n = counts[i].load(std::memory_order_relaxed);
    if (n == 0) continue;
    std::string code = VersionMetrics::kStatuses[i] ? std::to_string(VersionMetrics::kStatuses[i]) : "other";
    out += "kiln_requests_total{" + labels + (labels.empty() ? "" : ",") + "status=\"" + code + "\"} " +
           std::to_string(n) + "\n";
  }
}

}  // namespace

std::string prometheus_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double v) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::buckets() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    std::string le = i < bounds_.size() ? fmt_double(bounds_[i]) : "+Inf";
    out += name + "_bucket{" + labels + sep + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum{" + labels + "} " + fmt_double(sum_.load(std::memory_order_relaxed)) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_.load(std::memory_order_relaxed)) + "\n";
}

std::vector<double> latency_buckets() {
  return {25e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 0.1, 0.2, 0.5, 1, 2, 5, 10};
}

std::vector<double> batch_buckets(int max_batch) {
  std::vector<double> b;
  for (int x = 1; x < max_batch; x *= 2) b.push_back(x);
  b.push_back(max_batch);
  return b;
}

VersionMetrics::VersionMetrics(std::string model, int64_t version, int max_batch)
    : queue_seconds(latency_buckets()),
      compute_seconds(latency_buckets()),
      total_seconds(latency_buckets()),
      batch_size(batch_buckets(max_batch)),
      model_(std::move(model)),
      version_(version) {}

void VersionMetrics::count(int status) { by_status_[status_slot(status)].fetch_add(1, std::memory_order_relaxed); }

void VersionMetrics::render(std::string& out) const {
  std::string labels = "model=\"" + prometheus_label(model_) + "\",version=\"" + std::to_string(version_) + "\"";
  render_status_counts(out, labels, by_status_);
  queue_seconds.render(out, "kiln_queue_seconds", labels);
  compute_seconds.render(out, "kiln_compute_seconds", labels);
  total_seconds.render(out, "kiln_request_seconds", labels);
  batch_size.render(out, "kiln_batch_size", labels);
}

std::shared_ptr<VersionMetrics> MetricsRegistry::version(const std::string& model, int64_t version, int max_batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& v : versions_)
    if (v->model() == model && v->version() == version) return v;
  versions_.push_back(std::make_shared<VersionMetrics>(model, version, max_batch));
  return versions_.back();
}

void MetricsRegistry::count_unrouted(int status) { unrouted_[status_slot(status)].fetch_add(1, std::memory_order_relaxed); }

void MetricsRegistry::count_model(const std::string& model, int status) {
  std::lock_guard<std::mutex> lock(mutex_);  // an error path: a lock is cheap enough
  auto& counts = per_model_[model];
  if (!counts) counts = std::make_unique<StatusCounts>();
  (*counts)[status_slot(status)].fetch_add(1, std::memory_order_relaxed);
}

void MetricsRegistry::add_source(std::function<void(std::string&)> source) {
  std::lock_guard<std::mutex> lock(mutex_);
  sources_.push_back(std::move(source));
}

std::string MetricsRegistry::render() const {
  std::string out;
  out += "# HELP kiln_requests_total Inference requests by model, version and HTTP status.\n";
  out += "# TYPE kiln_requests_total counter\n";
  std::vector<std::shared_ptr<VersionMetrics>> versions;
  std::vector<std::function<void(std::string&)>> sources;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    versions = versions_;
    sources = sources_;
    for (const auto& [model, counts] : per_model_)
      render_status_counts(out, "model=\"" + prometheus_label(model) + "\",version=\"\"", *counts);
  }
  render_status_counts(out, "model=\"\",version=\"\"", unrouted_);
  std::string hist;
  for (const auto& v : versions) {
    std::string text;
    v->render(text);
    // Counters first, histograms after, so each family's lines stay together.
    size_t split = text.find("kiln_queue_seconds");
    out += text.substr(0, split);
    hist += text.substr(split);
  }
  // Histogram lines grouped by family, each after its HELP and TYPE, as the format requires.
  const std::pair<const char*, const char*> families[] = {
      {"kiln_queue_seconds", "Time requests wait in the batching queue."},
      {"kiln_compute_seconds", "Model execution time per batch."},
      {"kiln_request_seconds", "Request latency from arrival to response."},
      {"kiln_batch_size", "Examples per executed batch."}};
  for (const auto& [family, help] : families) {
    out += std::string("# HELP ") + family + " " + help + "\n# TYPE " + family + " histogram\n";
    const size_t n = std::char_traits<char>::length(family);
    for (size_t pos = 0; pos < hist.size();) {
      size_t end = hist.find('\n', pos);
      if (hist.compare(pos, n, family) == 0 && hist[pos + n] == '_') out.append(hist, pos, end - pos + 1);
      pos = end + 1;
    }
  }
  for (const auto& s : sources) s(out);
  return out;
}

}  // namespace kiln::runtime
