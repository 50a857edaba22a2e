#pragma once
// ModelManager: which versions of which models serve. It scans each model's base path for
// numbered version directories, loads the ones the version policy wants, warms each up before it
// takes traffic, and retires versions the policy no longer wants. Requests hold a shared_ptr to
// the version they use, so a retired version finishes its requests and is unloaded after the last
// one ends; a version that fails to load is logged and the versions already serving stay.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proto/serve_config.pb.h"
#include "runtime/drift_monitor.h"
#include "runtime/dynamic_batcher.h"
#include "runtime/metrics.h"
#include "runtime/servable.h"

namespace kiln::runtime {

struct LoadedVersion {
  std::string model;  // the name it is served under (the manifest's name may differ)
  std::shared_ptr<const Servable> servable;
  std::shared_ptr<VersionMetrics> metrics;
  std::unique_ptr<DriftMonitor> drift;        // tabular models
  std::unique_ptr<DynamicBatcher> batcher;    // destroyed first: it joins its thread
  ~LoadedVersion() { batcher.reset(); }
};

struct VersionStatus {
  int64_t version = 0;
  std::string state;  // "AVAILABLE", "LOADING" or "END" (failed or retired)
  std::string error;
};

class ModelManager {
 public:
  ModelManager(const ServeConfig& config, MetricsRegistry& metrics);
  ~ModelManager();

  // Scans and loads once (blocking), then keeps polling every poll_interval_s in a thread.
  void start();
  void stop();

  // The version to serve: `version`, or the newest available when version is 0. Null when none.
  std::shared_ptr<LoadedVersion> find(const std::string& model, int64_t version) const;
  bool has_model(const std::string& model) const;
  std::vector<VersionStatus> status(const std::string& model) const;
  std::vector<std::string> models() const;
  // Every configured model has at least one available version.
  bool ready() const;

  // One scan of every base path (tests call it to load a new version without waiting).
  void poll();

 private:
  struct Model {
    ModelConfig config;
    std::map<int64_t, std::shared_ptr<LoadedVersion>> available;
    struct Failure {
      std::string error;
      int64_t manifest_stamp = 0;  // retried when the manifest changes
    };
    std::map<int64_t, Failure> failed;
    std::set<std::string> reported_staging;  // stale export staging directories already logged
  };
  void poll_model(Model& m);
  void report_stale_staging(Model& m);
  std::shared_ptr<LoadedVersion> load(const ModelConfig& config, int64_t version, const std::string& dir);
  void warm_up(LoadedVersion& v);
  void collect_retired();
  void render_gauges(std::string& out) const;

  ServeConfig config_;
  MetricsRegistry& metrics_;
  DeviceExecutor device_;  // the one device every version runs on, one batch at a time
  mutable std::mutex mutex_;  // guards models_' maps (not the loading itself)
  std::map<std::string, Model> models_;
  std::mutex poll_mutex_;     // one scan at a time
  std::vector<std::shared_ptr<LoadedVersion>> retired_;
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kiln::runtime
