// kiln serve: the inference server (TensorFlow Serving and KServe v2 REST APIs, metrics).
#include <signal.h>

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "cli/run_device.h"
#include "cli/verbs.h"
#include "core/error.h"
#include "core/stream.h"
#include "io/atomic_file.h"
#include "io/config_file.h"
#include "runtime/http_server.h"
#include "runtime/model_manager.h"
#include "runtime/rest_api.h"

namespace kiln::cli {

namespace {

// protobuf logs multi-line "[libprotobuf ERROR ...]" blocks to stderr; the server's log keeps one
// line per event (our own errors already name the file and what is wrong).
void protobuf_log_line(google::protobuf::LogLevel level, const char*, int, const std::string& message) {
  if (level < google::protobuf::LOGLEVEL_WARNING) return;
  std::string line = message;
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::fprintf(stderr, "kiln serve: protobuf: %s\n", line.c_str());
}

}  // namespace

Action add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve exported models over REST (TensorFlow Serving and KServe v2 APIs)");
  cmd->footer(
      "TensorFlow Serving API under /v1/models, KServe v2 under /v2, Prometheus metrics at /metrics. Clients send raw "
      "features; the recorded transform runs in the server. New versions in a base path are loaded, warmed up and "
      "swapped in without failing requests. SIGTERM drains in-flight requests and exits. See docs/serving.md.");
  struct Options {
    std::string config_file, base_path, name, host, port_file, device, precision, kernel_library;
    int port = -1, io_threads = -1, io_poll_us = -1, max_batch = -1, threads = -1, instances = -1;
    int64_t delay_us = -1;
    double poll = -1, grace = -1;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--model_base_path", o->base_path, "Directory holding numbered version directories of one model");
  cmd->add_option("--model_name", o->name, "Name of that model (default: the base path's last component)");
  cmd->add_option("--config", o->config_file,
                  "ServeConfig file (.pbtxt or .json): several models, version policies, limits, batching "
                  "(docs/serving.md); flags override it");
  cmd->add_option("--rest_port", o->port, "HTTP port (default 8501; 0 picks a free one)");
  cmd->add_option("--host", o->host, "Address to bind (default 127.0.0.1; 0.0.0.0 for every interface)");
  cmd->add_option("--io_threads", o->io_threads, "HTTP I/O threads (default: hardware threads)");
  cmd->add_option("--io_poll_us", o->io_poll_us,
                  "Microseconds an I/O thread polls for more requests before it sleeps (default 30; 0: sleep at "
                  "once, saving CPU between sparse requests)");
  cmd->add_option("--max_batch_size", o->max_batch, "Largest batch the dynamic batcher forms (default 64)");
  cmd->add_option("--max_queue_delay_us", o->delay_us,
                  "Longest wait for a batch to fill (default 0: batches form while the executor is busy)");
  cmd->add_option("--compute_threads", o->threads, "CPU threads of each batch (default 1)");
  cmd->add_option("--instances", o->instances,
                  "Copies of each model version that run batches side by side on the CPU (default 0: one per I/O "
                  "thread; always 1 on sim and cuda)");
  cmd->add_option("--poll_interval_s", o->poll, "Seconds between scans for new versions (default 2; 0: never)");
  cmd->add_option("--shutdown_grace_s", o->grace,
                  "On SIGTERM, seconds to keep accepting (readiness already 503) before the drain (default 5)");
  cmd->add_option("--port_file", o->port_file, "Write the bound port to this file once serving (for scripts)");
  cmd->add_option("--device", o->device, "cpu, cuda[:INDEX] or sim[:INDEX] (default: the config's device, else cpu)");
  cmd->add_option("--precision", o->precision,
                  "GEMMs and convolutions at fp32, tf32 or bf16 (default: as each version was exported; "
                  "docs/cuda.md)");
  cmd->add_option("--kernel_library", o->kernel_library,
                  "kiln or vendor: the kernels on CUDA (default: the config's kernel_library, else kiln)");
  return [o] {
    google::protobuf::SetLogHandler(&protobuf_log_line);
    ServeConfig config;
    if (!o->config_file.empty()) io::load_config(o->config_file, config);
    if (!o->base_path.empty()) {
      ModelConfig* m = config.add_models();
      m->set_base_path(o->base_path);
      m->set_name(o->name);
    } else if (!o->name.empty()) {
      fail("--model_name needs --model_base_path");
    }
    if (o->port >= 0) config.set_rest_port(o->port);
    if (!o->host.empty()) config.set_host(o->host);
    if (o->io_threads >= 0) config.set_io_threads(o->io_threads);
    if (o->io_poll_us >= 0) config.set_io_poll_us(o->io_poll_us);
    if (o->max_batch >= 0) config.mutable_batching()->set_max_batch_size(o->max_batch);
    if (o->delay_us >= 0) config.mutable_batching()->set_max_queue_delay_us(o->delay_us);
    if (o->threads >= 0) config.mutable_batching()->set_threads(o->threads);
    if (o->instances >= 0) config.mutable_batching()->set_instances(o->instances);
    if (o->poll >= 0) config.set_poll_interval_s(o->poll);
    if (o->grace >= 0) config.set_shutdown_grace_s(o->grace);
    if (!(config.shutdown_grace_s() >= 0)) fail("shutdown_grace_s must be >= 0");
    if (config.rest_port() < 0 || config.rest_port() > 65535) fail("--rest_port must be in [0, 65535]");
    if (config.batching().threads() < 1) fail("batching.threads must be >= 1");
    if (config.io_poll_us() < 0) fail("io_poll_us must be >= 0");
    if (!o->device.empty()) apply_device_flag(o->device, config);
    if (!o->precision.empty()) apply_precision_flag(o->precision, config);
    if (!o->kernel_library.empty()) apply_kernel_library_flag(o->kernel_library, config);
    const Device device =
        models::configured_device(config.device(), config.device_index(), "pass --device cpu or set device: CPU in the config");
    apply_kernel_library(config.kernel_library(), config.kernel_library_overrides());
    set_cpu_threads(config.batching().threads());

    // Signals are taken synchronously by this thread; every thread started below inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    runtime::MetricsRegistry metrics;
    runtime::ModelManager models(config, metrics);
    models.start();
    runtime::RestApi api(config, models, metrics);
    runtime::HttpServerOptions http;
    http.host = config.host();
    http.port = config.rest_port();
    http.io_threads = runtime::io_threads_for(config.io_threads());
    http.io_poll = std::chrono::microseconds(config.io_poll_us());
    http.max_body_bytes = config.max_body_bytes();
    http.header_timeout = std::chrono::milliseconds(config.header_timeout_ms());
    http.body_timeout = std::chrono::milliseconds(config.body_timeout_ms());
    http.on_rejected = [&api](int status, std::string_view target) { api.count_rejected(status, target); };
    runtime::HttpServer server(http, [&api](runtime::HttpRequest&& r, runtime::Responder respond) {
      api.handle(std::move(r), std::move(respond));
    });
    server.start();
    std::string names;
    for (const auto& n : models.models()) names += (names.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "kiln serve: listening on http://%s:%d (models: %s on %s; %d I/O threads)%s\n",
                 http.host.c_str(), server.port(), names.c_str(), device.to_string().c_str(), http.io_threads,
                 models.ready() ? "" : " — NOT READY: no version loaded yet");
    if (!o->port_file.empty()) io::write_file_atomic(o->port_file, std::to_string(server.port()) + "\n");

    int sig = 0;
    sigwait(&signals, &sig);
    // Kubernetes' order: readiness fails first while traffic still arrives (endpoints take a few
    // seconds to drop the pod); then the listener closes and what was accepted drains. SIGINT
    // (Ctrl-C at a terminal) and a second signal skip the grace period.
    api.set_draining();
    const double grace = sig == SIGTERM ? config.shutdown_grace_s() : 0;
    std::fprintf(stderr, "kiln serve: %s received: not ready; accepting for %.1f s more, then draining (deadline %.0f s)\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", grace, config.shutdown_deadline_s());
    if (grace > 0) {
      timespec wait{static_cast<time_t>(grace), static_cast<long>((grace - std::floor(grace)) * 1e9)};
      if (sigtimedwait(&signals, nullptr, &wait) > 0) std::fprintf(stderr, "kiln serve: second signal: grace period cut short\n");
    }
    std::fprintf(stderr, "kiln serve: closing the listener; draining %lld connections\n",
                 static_cast<long long>(server.connections()));
    const bool drained =
        server.shutdown(std::chrono::milliseconds(static_cast<int64_t>(config.shutdown_deadline_s() * 1000)));
    models.stop();
    if (drained)
      std::fprintf(stderr, "kiln serve: drained, exiting\n");
    else
      std::fprintf(stderr, "kiln serve: deadline passed with %lld requests in flight on %lld connections, exiting\n",
                   static_cast<long long>(server.in_flight()), static_cast<long long>(server.connections()));
    if (!drained && std::getenv("KILN_DEBUG_DRAIN")) std::fprintf(stderr, "%s", metrics.render().c_str());
    return drained ? 0 : 1;
  };
}

}  // namespace kiln::cli
