#pragma once
// The REST APIs on top of the ModelManager: TensorFlow Serving (/v1/models/...), KServe v2 /
// Open Inference Protocol (/v2/...) and Prometheus metrics (/metrics). Requests are parsed and
// transformed on the I/O thread that read them, then queued to their version's batcher; the
// response is written when the batch has run. Every failure is a JSON {"error": "..."} with a
// fitting status; nothing a client sends can stop the server.
#include <atomic>

#include "proto/serve_config.pb.h"
#include "runtime/http_server.h"
#include "runtime/metrics.h"
#include "runtime/model_manager.h"

namespace kiln::runtime {

class RestApi {
 public:
  RestApi(const ServeConfig& config, ModelManager& models, MetricsRegistry& metrics);
  void handle(HttpRequest&& request, Responder respond);
  // Readiness turns false (503) once shutdown begins, so load balancers stop routing here.
  void set_draining() { draining_ = true; }
  // Counts an error the HTTP layer answered itself (408, 413, 431, 400) under the model the
  // target names, when it names a configured one.
  void count_rejected(int status, std::string_view target);

 private:
  struct Route;
  void predict(Route& route, HttpRequest&& request, Responder respond);
  // The configured model a target's path names ("" when none): /v1/models/{m}..., /v2/models/{m}...
  std::string model_named(std::string_view target) const;
  void count_error(const std::string& model, int status);

  ServeConfig config_;
  ModelManager& models_;
  MetricsRegistry& metrics_;
  std::atomic<bool> draining_{false};
};

}  // namespace kiln::runtime
