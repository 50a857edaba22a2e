#include "runtime/model_manager.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "models/device_config.h"
#include "runtime/exporter.h"
#include "runtime/http_server.h"
#include "runtime/json_request.h"

namespace kiln::runtime {

namespace fs = std::filesystem;

namespace {

int64_t stamp_of(const std::string& dir) {
  std::error_code ec;
  auto t = fs::last_write_time(fs::path(dir) / kManifestFile, ec);
  return ec ? 0 : static_cast<int64_t>(t.time_since_epoch().count());
}

std::string model_name(const ModelConfig& c) {
  if (!c.name().empty()) return c.name();
  return fs::path(c.base_path()).lexically_normal().filename().string();
}

}  // namespace

ModelManager::ModelManager(const ServeConfig& config, MetricsRegistry& metrics)
    : config_(config),
      metrics_(metrics),
      device_(models::configured_device(config.device(), config.device_index(),
                                        "pass --device cpu or set device: CPU in the config"),
              config.precision(), config.graphs(), io_threads_for(config.io_threads())) {
  if (config.models().empty()) fail("no models to serve: give --model_base_path or a config with models { ... }");
  for (ModelConfig c : config.models()) {
    if (c.base_path().empty()) fail("models: base_path is empty");
    c.set_name(model_name(c));
    if (models_.count(c.name())) fail("model '", c.name(), "' is configured twice");
    if (!fs::is_directory(c.base_path())) fail("model '", c.name(), "': base path ", c.base_path(), " is not a directory");
    const VersionPolicy& p = c.version_policy();
    if (p.has_latest() && p.latest().num_versions() < 1)
      fail("model '", c.name(), "': version_policy.latest.num_versions must be >= 1");
    models_[c.name()].config = c;
  }
  metrics_.add_source([this](std::string& out) { render_gauges(out); });
}

ModelManager::~ModelManager() { stop(); }

void ModelManager::start() {
  poll();
  if (config_.poll_interval_s() <= 0) return;
  thread_ = std::thread([this] {
    const auto interval = std::chrono::duration<double>(config_.poll_interval_s());
    auto next_poll = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
    std::unique_lock<std::mutex> lock(stop_mutex_);
    while (!stopping_) {
      // Retired versions are checked often, so memory goes back soon after their last request.
      stop_cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (stopping_) break;
      lock.unlock();
      collect_retired();
      if (std::chrono::steady_clock::now() >= next_poll) {
        poll();
        next_poll = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
      }
      lock.lock();
    }
  });
}

void ModelManager::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ModelManager::poll() {
  std::lock_guard<std::mutex> guard(poll_mutex_);
  for (auto& [name, m] : models_) poll_model(m);
  collect_retired();
}

void ModelManager::poll_model(Model& m) {
  const ModelConfig& c = m.config;
  std::map<int64_t, std::string> present = list_versions(c.base_path());
  report_stale_staging(m);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase_if(m.failed, [&](const auto& f) { return !present.count(f.first); });  // deleted since
  }
  // Candidates in order of preference. Latest N takes the N newest versions that load: a corrupt
  // newest version is reported and skipped, and the next older one serves in its place.
  std::vector<int64_t> candidates;
  size_t want = 0;
  const VersionPolicy& p = c.version_policy();
  if (p.has_specific()) {
    for (int64_t v : p.specific().versions())
      if (present.count(v)) candidates.push_back(v);
    want = candidates.size();
  } else {
    for (auto it = present.rbegin(); it != present.rend(); ++it) candidates.push_back(it->first);
    want = p.has_all() ? candidates.size() : static_cast<size_t>(p.has_latest() ? p.latest().num_versions() : 1);
  }
  std::vector<int64_t> wanted;
  for (int64_t v : candidates) {
    if (wanted.size() >= want) break;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (m.available.count(v)) {
        wanted.push_back(v);
        continue;
      }
      auto f = m.failed.find(v);
      if (f != m.failed.end() && f->second.manifest_stamp == stamp_of(present[v])) continue;  // unchanged since
    }
    const auto t0 = std::chrono::steady_clock::now();
    try {
      auto loaded = load(c, v, present[v]);
      const int instances = loaded->batcher->instances();
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::lock_guard<std::mutex> lock(mutex_);
      m.available[v] = std::move(loaded);
      m.failed.erase(v);
      wanted.push_back(v);
      std::fprintf(stderr, "kiln serve: model '%s' version %lld is AVAILABLE (%d instance%s, loaded and warmed up in %.0f ms)\n",
                   c.name().c_str(), static_cast<long long>(v), instances, instances == 1 ? "" : "s", ms);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      m.failed[v] = {e.what(), stamp_of(present[v])};
      std::fprintf(stderr, "kiln serve: model '%s' version %lld failed to load: %s\n", c.name().c_str(),
                   static_cast<long long>(v), e.what());
    }
  }
  // Retire what the policy no longer wants, but never the last available version of a model
  // whose wanted versions all failed to load.
  std::lock_guard<std::mutex> lock(mutex_);
  if (wanted.empty()) return;
  for (auto it = m.available.begin(); it != m.available.end();) {
    if (std::find(wanted.begin(), wanted.end(), it->first) == wanted.end()) {
      std::fprintf(stderr, "kiln serve: model '%s' version %lld retired; it unloads after its last request\n",
                   c.name().c_str(), static_cast<long long>(it->first));
      retired_.push_back(std::move(it->second));
      it = m.available.erase(it);
    } else {
      ++it;
    }
  }
}

// Each stale staging directory is logged once, while it exists; the next export removes it.
void ModelManager::report_stale_staging(Model& m) {
  std::set<std::string> now;
  for (const std::string& dir : stale_staging_dirs(m.config.base_path())) {
    now.insert(dir);
    if (!m.reported_staging.count(dir))
      std::fprintf(stderr,
                   "kiln serve: model '%s': %s is the staging directory of an export that died; not served, the "
                   "next kiln export removes it\n",
                   m.config.name().c_str(), dir.c_str());
  }
  m.reported_staging = std::move(now);
}

std::shared_ptr<LoadedVersion> ModelManager::load(const ModelConfig& config, int64_t version, const std::string& dir) {
  auto v = std::make_shared<LoadedVersion>();
  v->model = config.name();
  v->servable = Servable::load(dir);
  if (v->servable->version() != version)
    fail("directory ", dir, " holds version ", v->servable->version(), " by its manifest");
  const BatchingConfig& b = config_.batching();
  v->metrics = metrics_.version(config.name(), version, b.max_batch_size());
  if (v->servable->tabular())
    v->drift = std::make_unique<DriftMonitor>(v->servable->manifest().transform_state(), v->servable->schema());
  v->batcher = std::make_unique<DynamicBatcher>(v->servable, b, v->metrics, device_);
  warm_up(*v);
  return v;
}

void ModelManager::warm_up(LoadedVersion& v) {
  const Servable& s = *v.servable;
  std::string lines;
  for (const std::string& w : s.manifest().warmup_instances()) lines += w + "\n";
  if (lines.empty()) return;
  ParsedRequest parsed;
  RequestLimits limits;
  parse_json_lines(lines, s.dir() + " (warm-up rows)", s.schema(), limits, parsed);
  transform::ModelInputs one = s.tabular() ? s.prepare(parsed.rows) : s.prepare_tensor(parsed.tensor, parsed.count);
  // Run the rows once, then a full batch, so buffers are allocated before traffic arrives.
  std::vector<const transform::ModelInputs*> copies;
  int64_t rows = 0;
  while (rows < v.batcher->config().max_batch_size()) {
    copies.push_back(&one);
    rows += one.batch;
  }
  try {
    v.batcher->warm_up(one);
    v.batcher->warm_up(concat_inputs(copies));
  } catch (const std::exception& e) {
    fail("warm-up failed: ", e.what());
  }
}

void ModelManager::collect_retired() {
  std::vector<std::shared_ptr<LoadedVersion>> done;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = retired_.begin(); it != retired_.end();) {
      if (it->use_count() == 1) {
        done.push_back(std::move(*it));
        it = retired_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& v : done)
    std::fprintf(stderr, "kiln serve: model '%s' version %lld unloaded\n", v->model.c_str(),
                 static_cast<long long>(v->servable->version()));
  done.clear();  // joins the batcher threads outside the lock
}

std::shared_ptr<LoadedVersion> ModelManager::find(const std::string& model, int64_t version) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = models_.find(model);
  if (it == models_.end() || it->second.available.empty()) return nullptr;
  if (version == 0) return it->second.available.rbegin()->second;
  auto v = it->second.available.find(version);
  return v == it->second.available.end() ? nullptr : v->second;
}

bool ModelManager::has_model(const std::string& model) const { return models_.count(model) > 0; }

std::vector<VersionStatus> ModelManager::status(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<VersionStatus> out;
  auto it = models_.find(model);
  if (it == models_.end()) return out;
  for (const auto& [v, loaded] : it->second.available) out.push_back({v, "AVAILABLE", ""});
  for (const auto& [v, failure] : it->second.failed)
    if (!it->second.available.count(v)) out.push_back({v, "END", failure.error});
  std::sort(out.begin(), out.end(), [](const VersionStatus& a, const VersionStatus& b) { return a.version > b.version; });
  return out;
}

std::vector<std::string> ModelManager::models() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : models_) out.push_back(name);
  return out;
}

bool ModelManager::ready() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [name, m] : models_)
    if (m.available.empty()) return false;
  return true;
}

void ModelManager::render_gauges(std::string& out) const {
  std::vector<std::shared_ptr<LoadedVersion>> live;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, m] : models_)
      for (const auto& [v, loaded] : m.available) live.push_back(loaded);
  }
  out += "# HELP kiln_loaded_versions Model versions loaded and serving.\n# TYPE kiln_loaded_versions gauge\n";
  std::map<std::string, int> per_model;
  for (const auto& name : models()) per_model[name] = 0;
  for (const auto& v : live) ++per_model[v->model];
  for (const auto& [name, n] : per_model)
    out += "kiln_loaded_versions{model=\"" + prometheus_label(name) + "\"} " + std::to_string(n) + "\n";
  out += "# HELP kiln_version_load_failed Versions present in a base path that failed to load (1 each; the "
         "error is in GET /v1/models/{model} and the log).\n# TYPE kiln_version_load_failed gauge\n";
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, m] : models_)
      for (const auto& [v, failure] : m.failed)
        out += "kiln_version_load_failed{model=\"" + prometheus_label(name) + "\",version=\"" + std::to_string(v) + "\"} 1\n";
  }
  out += "# HELP kiln_queue_rows Examples waiting in the batching queue.\n# TYPE kiln_queue_rows gauge\n";
  for (const auto& v : live)
    out += "kiln_queue_rows{model=\"" + prometheus_label(v->model) + "\",version=\"" + std::to_string(v->servable->version()) +
           "\"} " + std::to_string(v->batcher->queued_rows()) + "\n";
  out += "# HELP kiln_feature_drift Distance of live raw inputs from the training statistics "
         "(js: Jensen-Shannon divergence of numeric histograms; linf: L-infinity of category frequencies).\n"
         "# TYPE kiln_feature_drift gauge\n";
  std::string counts, oov;
  for (const auto& v : live)
    if (v->drift)
      v->drift->render(out, counts, oov, "model=\"" + prometheus_label(v->model) + "\",version=\"" +
                                        std::to_string(v->servable->version()) + "\"");
  out += "# HELP kiln_feature_live_values_total Live raw values seen by the drift monitor.\n"
         "# TYPE kiln_feature_live_values_total counter\n" + counts;
  // Values outside the training vocabulary are served from the OOV bucket, which training saw
  // only for values below the vocabulary's frequency cut (if at all).
  out += "# HELP kiln_feature_oov_values_total Live values of vocabulary features outside the training vocabulary "
         "(served from the out-of-vocabulary bucket).\n# TYPE kiln_feature_oov_values_total counter\n" + oov;
}

}  // namespace kiln::runtime
