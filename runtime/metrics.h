#pragma once
// Prometheus metrics of the server, rendered in the text exposition format on GET /metrics.
// Hot-path updates are lock-free atomics; series are created when a version loads.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::runtime {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  // Appends NAME_bucket{LABELS,le="..."}, NAME_sum and NAME_count lines.
  void render(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // Counts per bucket (not cumulative), the last one for +Inf.
  std::vector<uint64_t> buckets() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Latency buckets in seconds, 25 us .. 10 s.
std::vector<double> latency_buckets();
// Batch-size buckets: 1, 2, 4, ... max_batch.
std::vector<double> batch_buckets(int max_batch);

// Statistics of one model version.
class VersionMetrics {
 public:
  VersionMetrics(std::string model, int64_t version, int max_batch);
  static constexpr std::array<int, 12> kStatuses{200, 400, 404, 405, 408, 413, 415, 431, 500, 503, 504, 0};  // 0: others

  void count(int status);
  Histogram queue_seconds, compute_seconds, total_seconds, batch_size;
  const std::string& model() const { return model_; }
  int64_t version() const { return version_; }
  void render(std::string& out) const;

 private:
  std::string model_;
  int64_t version_;
  std::array<std::atomic<uint64_t>, kStatuses.size()> by_status_{};
};

// Every series, plus gauges sampled at scrape time from whoever registers a source.
class MetricsRegistry {
 public:
  std::shared_ptr<VersionMetrics> version(const std::string& model, int64_t version, int max_batch);
  // Requests that name no configured model (by status).
  void count_unrouted(int status);
  // Requests refused before reaching a version (405, 408, 413, 431, ...) of a configured model:
  // kiln_requests_total{model="m",version=""}.
  void count_model(const std::string& model, int status);
  // Appends gauge text at each scrape (queue depth, loaded versions, drift).
  void add_source(std::function<void(std::string&)> source);
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<VersionMetrics>> versions_;
  std::vector<std::function<void(std::string&)>> sources_;
  using StatusCounts = std::array<std::atomic<uint64_t>, VersionMetrics::kStatuses.size()>;
  StatusCounts unrouted_{};
  std::map<std::string, std::unique_ptr<StatusCounts>> per_model_;  // guarded by mutex_
};

// Label value escaping per the exposition format (backslash, quote, newline).
std::string prometheus_label(const std::string& v);

}  // namespace kiln::runtime
