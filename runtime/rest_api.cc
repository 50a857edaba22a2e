#include "runtime/rest_api.h"

#include <charconv>

#include "core/error.h"
#include "runtime/http_server.h"
#include "runtime/json_request.h"
#include "runtime/json_writer.h"
#include "runtime/kserve_request.h"
#include "runtime/responses.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

namespace kiln::runtime {

namespace {

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse error_response(int status, std::string_view message) { return json_response(status, json_error(message)); }

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t q = path.find('?');
  if (q != std::string_view::npos) path = path.substr(0, q);
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) parts.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

bool parse_version(std::string_view s, int64_t* v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && *v > 0;
}

std::string tf_dtype(const SignatureInput& in) { return in.type() == SignatureInput::STRING ? "DT_STRING" : "DT_FLOAT"; }
std::string tf_dtype(const SignatureOutput& out) {
  if (out.dtype() == "BYTES") return "DT_STRING";
  if (out.dtype() == "INT64") return "DT_INT64";
  return "DT_FLOAT";
}

template <typename T>
void append_tf_tensor_info(std::string& out, const T& x, const std::string& dtype) {
  append_json_string(out, x.name());
  out += ":{\"dtype\":\"" + dtype + "\",\"tensor_shape\":{\"dim\":[{\"size\":\"-1\",\"name\":\"\"}";
  for (int64_t d : x.shape()) out += ",{\"size\":\"" + std::to_string(d) + "\",\"name\":\"\"}";
  out += "],\"unknown_rank\":false},\"name\":";
  append_json_string(out, x.name());
  out += '}';
}

std::string tf_metadata(const std::string& name, const Servable& s) {
  const Signature& sig = s.signature();
  std::string out = "{\"model_spec\":{\"name\":";
  append_json_string(out, name);
  out += ",\"signature_name\":\"\",\"version\":\"" + std::to_string(s.version()) +
         "\"},\"metadata\":{\"signature_def\":{\"signature_def\":{\"serving_default\":{\"inputs\":{";
  bool first = true;
  for (const SignatureInput& in : sig.inputs()) {
    if (!first) out += ',';
    first = false;
    append_tf_tensor_info(out, in, tf_dtype(in));
  }
  if (!sig.key().empty()) {
    SignatureInput key;
    key.set_name(sig.key());
    key.set_type(SignatureInput::STRING);
    if (!first) out += ',';
    append_tf_tensor_info(out, key, "DT_STRING");
  }
  out += "},\"outputs\":{";
  first = true;
  for (const SignatureOutput& o : sig.outputs()) {
    if (!first) out += ',';
    first = false;
    append_tf_tensor_info(out, o, tf_dtype(o));
  }
  out += "},\"method_name\":\"tensorflow/serving/predict\"}}}}}";
  return out;
}

std::string kserve_metadata(const std::string& name, const std::vector<VersionStatus>& versions, const Servable& s) {
  std::string out = "{\"name\":";
  append_json_string(out, name);
  out += ",\"versions\":[";
  bool first = true;
  for (const VersionStatus& v : versions) {
    if (v.state != "AVAILABLE") continue;
    if (!first) out += ',';
    first = false;
    out += "\"" + std::to_string(v.version) + "\"";
  }
  out += "],\"platform\":\"kiln\",\"inputs\":[";
  const Signature& sig = s.signature();
  first = true;
  auto tensor = [&](const std::string& n, const std::string& dtype, const google::protobuf::RepeatedField<int64_t>& shape) {
    if (!first) out += ',';
    first = false;
    out += "{\"name\":";
    append_json_string(out, n);
    out += ",\"datatype\":\"" + dtype + "\",\"shape\":[-1";
    if (shape.empty()) out += ",1";
    for (int64_t d : shape) out += "," + std::to_string(d);
    out += "]}";
  };
  for (const SignatureInput& in : sig.inputs())
    tensor(in.name(), in.type() == SignatureInput::STRING ? "BYTES" : "FP32", in.shape());
  if (!sig.key().empty()) tensor(sig.key(), "BYTES", {});
  out += "],\"outputs\":[";
  first = true;
  for (const SignatureOutput& o : sig.outputs()) tensor(o.name(), o.dtype(), o.shape());
  out += "]}";
  return out;
}

// Triton's model configuration (GET .../config), which Triton's tools (perf_analyzer) read to
// learn the batch size limit and the tensors without the batch dimension.
std::string triton_config(const std::string& name, const Servable& s, int max_batch_size) {
  auto type = [](const std::string& dtype) {
    if (dtype == "BYTES") return std::string("TYPE_STRING");
    if (dtype == "INT64") return std::string("TYPE_INT64");
    return std::string("TYPE_FP32");
  };
  std::string out = "{\"name\":";
  append_json_string(out, name);
  out += ",\"platform\":\"kiln\",\"backend\":\"kiln\",\"max_batch_size\":" + std::to_string(max_batch_size) +
         ",\"dynamic_batching\":{},\"input\":[";
  bool first = true;
  auto tensor = [&](const std::string& n, const std::string& t, const google::protobuf::RepeatedField<int64_t>& shape) {
    if (!first) out += ',';
    first = false;
    out += "{\"name\":";
    append_json_string(out, n);
    out += ",\"data_type\":\"" + t + "\",\"dims\":[";
    if (shape.empty()) out += "1";
    for (int i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
    out += "]}";
  };
  const Signature& sig = s.signature();
  for (const SignatureInput& in : sig.inputs())
    tensor(in.name(), in.type() == SignatureInput::STRING ? "TYPE_STRING" : "TYPE_FP32", in.shape());
  if (!sig.key().empty()) tensor(sig.key(), "TYPE_STRING", {});
  out += "],\"output\":[";
  first = true;
  for (const SignatureOutput& o : sig.outputs()) tensor(o.name(), type(o.dtype()), o.shape());
  out += "]}";
  return out;
}

}  // namespace

struct RestApi::Route {
  enum class Api { kTfPredict, kTfClassify, kTfRegress, kKserveInfer } api;
  std::string model;
  int64_t version = 0;
};

RestApi::RestApi(const ServeConfig& config, ModelManager& models, MetricsRegistry& metrics)
    : config_(config), models_(models), metrics_(metrics) {}

std::string RestApi::model_named(std::string_view target) const {
  std::vector<std::string_view> p = split_path(target);
  if (p.size() < 3 || (p[0] != "v1" && p[0] != "v2") || p[1] != "models") return "";
  std::string_view name = p[2];
  if (p[0] == "v1" && p.size() == 3) name = name.substr(0, name.rfind(':'));  // /v1/models/m:predict
  return models_.has_model(std::string(name)) ? std::string(name) : "";
}

void RestApi::count_error(const std::string& model, int status) {
  if (model.empty()) metrics_.count_unrouted(status);
  else metrics_.count_model(model, status);
}

void RestApi::count_rejected(int status, std::string_view target) { count_error(model_named(target), status); }

void RestApi::handle(HttpRequest&& request, Responder respond) {
  auto reply = [&](int status, std::string body) {
    respond(json_response(status, std::move(body)));
  };
  const std::string named = model_named(request.target);
  auto error = [&](int status, std::string_view message) {
    count_error(named, status);
    respond(error_response(status, message));
  };
  const bool get = request.method == "GET", post = request.method == "POST";
  std::vector<std::string_view> p = split_path(request.target);
  auto method_check = [&](bool ok, const char* allowed) {
    if (ok) return true;
    HttpResponse r = error_response(405, str_cat("method ", request.method, " not allowed here (use ", allowed, ")"));
    r.headers.emplace_back("Allow", allowed);
    count_error(named, 405);
    respond(std::move(r));
    return false;
  };

  if (p.size() == 1 && p[0] == "metrics") {
    if (!method_check(get, "GET")) return;
    HttpResponse r;
    r.body = metrics_.render();
    r.content_type = "text/plain; version=0.0.4";
    return respond(std::move(r));
  }

  // ---- KServe v2 ----
  if (!p.empty() && p[0] == "v2") {
    if (p.size() == 1) {
      if (!method_check(get, "GET")) return;
      return reply(200, std::string("{\"name\":\"kiln\",\"version\":\"") + KILN_VERSION +
                            "\",\"extensions\":[\"binary_tensor_data\",\"model_repository\"]}");
    }
    if (p.size() == 3 && p[1] == "health") {
      if (!method_check(get, "GET")) return;
      if (p[2] == "live") return reply(200, "{\"live\":true}");
      if (p[2] == "ready") {
        bool ready = !draining_ && models_.ready();
        return reply(ready ? 200 : 503, ready ? "{\"ready\":true}" : "{\"ready\":false}");
      }
      return error(404, "unknown path " + request.target);
    }
    if (p.size() >= 3 && p[1] == "models") {
      Route route{Route::Api::kKserveInfer, std::string(p[2]), 0};
      size_t i = 3;
      if (p.size() >= 5 && p[3] == "versions") {
        if (!parse_version(p[4], &route.version)) return error(400, str_cat("bad version '", p[4], "'"));
        i = 5;
      }
      if (!models_.has_model(route.model)) return error(404, str_cat("unknown model '", route.model, "'"));
      std::string_view action = i < p.size() ? p[i] : "";
      if (i + 1 < p.size()) return error(404, "unknown path " + request.target);
      if (action == "infer") {
        if (!method_check(post, "POST")) return;
        return predict(route, std::move(request), std::move(respond));
      }
      if (!method_check(get, "GET")) return;
      auto v = models_.find(route.model, route.version);
      if (action == "ready") {
        if (draining_) return error(503, "the server is shutting down");
        if (v) return reply(200, "{\"ready\":true}");
        return error(route.version ? 404 : 503, str_cat("model '", route.model, "' has no ready version",
                                                        route.version ? " " + std::to_string(route.version) : ""));
      }
      if (action == "config") {
        if (!v) return error(404, str_cat("model '", route.model, "' has no available version"));
        return reply(200, triton_config(route.model, *v->servable, config_.batching().max_batch_size()));
      }
      if (!action.empty()) return error(404, "unknown path " + request.target);
      if (!v) return error(404, str_cat("model '", route.model, "' has no available version", route.version ? " " : "",
                                        route.version ? std::to_string(route.version) : ""));
      return reply(200, kserve_metadata(route.model, models_.status(route.model), *v->servable));
    }
    return error(404, "unknown path " + request.target);
  }

  // ---- TensorFlow Serving ----
  if (p.size() >= 3 && p[0] == "v1" && p[1] == "models") {
    // The verb rides on the last segment: /v1/models/m:predict or /v1/models/m/versions/2:predict.
    std::string_view last = p.back();
    std::string_view verb;
    if (size_t colon = last.rfind(':'); colon != std::string_view::npos) {
      verb = last.substr(colon + 1);
      p.back() = last.substr(0, colon);
    }
    Route route{Route::Api::kTfPredict, std::string(p[2]), 0};
    size_t i = 3;
    if (p.size() >= 5 && p[3] == "versions") {
      if (!parse_version(p[4], &route.version)) return error(400, str_cat("bad version '", p[4], "'"));
      i = 5;
    }
    if (!models_.has_model(route.model)) return error(404, str_cat("Servable not found for request: unknown model '", route.model, "'"));
    if (!verb.empty()) {
      if (i != p.size()) return error(404, "unknown path " + request.target);
      if (verb == "predict") route.api = Route::Api::kTfPredict;
      else if (verb == "classify") route.api = Route::Api::kTfClassify;
      else if (verb == "regress") route.api = Route::Api::kTfRegress;
      else return error(404, str_cat("unknown verb ':", verb, "' (predict, classify or regress)"));
      if (!method_check(post, "POST")) return;
      return predict(route, std::move(request), std::move(respond));
    }
    if (!method_check(get, "GET")) return;
    if (i == p.size()) {
      std::vector<VersionStatus> status = models_.status(route.model);
      std::string out = "{\"model_version_status\":[";
      bool first = true;
      // While shutting down the serving versions say UNLOADING and the status is 503, so a
      // readiness probe on this path fails as /v2/health/ready does.
      const bool draining = draining_;
      for (const VersionStatus& s : status) {
        if (route.version && s.version != route.version) continue;
        if (!first) out += ',';
        first = false;
        const std::string state = draining && s.state == "AVAILABLE" ? "UNLOADING" : s.state;
        out += "{\"version\":\"" + std::to_string(s.version) + "\",\"state\":\"" + state + "\",\"status\":{\"error_code\":\"" +
               (s.error.empty() ? "OK" : "UNKNOWN") + "\",\"error_message\":";
        append_json_string(out, s.error);
        out += "}}";
      }
      out += "]}";
      if (first) return error(404, str_cat("model '", route.model, "' has no version ", route.version ? std::to_string(route.version) : "loaded"));
      return reply(draining ? 503 : 200, out);
    }
    if (i + 1 == p.size() && p[i] == "metadata") {
      auto v = models_.find(route.model, route.version);
      if (!v) return error(404, str_cat("Servable not found for request: model '", route.model, "'"));
      return reply(200, tf_metadata(route.model, *v->servable));
    }
    return error(404, "unknown path " + request.target);
  }
  error(404, "unknown path " + request.target +
                 " (TensorFlow Serving API under /v1/models, KServe v2 under /v2, metrics at /metrics)");
}

void RestApi::predict(Route& route, HttpRequest&& request, Responder respond) {
  std::shared_ptr<LoadedVersion> v = models_.find(route.model, route.version);
  if (!v) {
    metrics_.count_model(route.model, 404);
    return respond(error_response(404, route.version ? str_cat("model '", route.model, "' has no version ", route.version)
                                                     : str_cat("model '", route.model, "' has no available version")));
  }
  const Servable& s = *v->servable;
  auto fail_request = [&](int status, std::string_view message) {
    v->metrics->count(status);
    respond(error_response(status, message));
  };
  if (!request.content_encoding.empty() && request.content_encoding != "identity")
    return fail_request(415, str_cat("Content-Encoding '", request.content_encoding, "' is not supported"));
  RequestLimits limits;
  limits.max_rows = config_.max_request_rows();
  limits.max_depth = config_.max_json_depth();
  KserveRequest kserve;  // the TF APIs use its parsed rows only
  ParsedRequest& parsed = kserve.parsed;
  transform::ModelInputs inputs;
  try {
    switch (route.api) {
      case Route::Api::kTfPredict: parse_tf_request(request.body, TfApi::kPredict, s.schema(), limits, parsed); break;
      case Route::Api::kTfClassify: parse_tf_request(request.body, TfApi::kClassify, s.schema(), limits, parsed); break;
      case Route::Api::kTfRegress: parse_tf_request(request.body, TfApi::kRegress, s.schema(), limits, parsed); break;
      case Route::Api::kKserveInfer: {
        size_t json_size = request.body.size();
        if (!request.inference_header_length.empty()) {
          auto r = std::from_chars(request.inference_header_length.data(),
                                   request.inference_header_length.data() + request.inference_header_length.size(), json_size);
          if (r.ec != std::errc()) return fail_request(400, "Inference-Header-Content-Length is not a number");
        }
        parse_kserve_request(request.body, json_size, s.schema(), limits, kserve);
        break;
      }
    }
    if (s.tabular()) {
      inputs = s.prepare(parsed.rows);
      v->drift->observe(parsed.rows);
    } else {
      inputs = s.prepare_tensor(parsed.tensor, parsed.count);
    }
  } catch (const Error& e) {
    return fail_request(400, e.what());
  }
  const int key_col = s.tabular() && !s.signature().key().empty() ? s.schema().find(s.signature().key()) : -1;
  const bool with_key = key_col >= 0 && parsed.rows.any_present(key_col);
  BatchTask task;
  task.inputs = std::move(inputs);
  task.arrival = request.arrival;
  task.deadline = request.arrival + std::chrono::milliseconds(config_.batching().request_timeout_ms());
  const bool columnar = parsed.columnar;
  const auto api = route.api;
  // Only the model inputs and the response form travel on; the body and the raw rows end here.
  task.done = [v, response = std::move(kserve.response), columnar, api, respond, with_key,
               arrival = request.arrival](BatchOutcome&& o) {
    const Servable& s = *v->servable;
    HttpResponse r;
    if (!with_key) o.keys.clear();  // a request without keys gets no empty ones back
    if (o.status == 200) {
      try {
        switch (api) {
          case Route::Api::kTfPredict: r.body = tf_predict_response(s.signature(), o.predictions, o.keys, columnar); break;
          case Route::Api::kTfClassify: r.body = tf_classify_response(s, o.predictions); break;
          case Route::Api::kTfRegress: r.body = tf_regress_response(s, o.predictions); break;
          case Route::Api::kKserveInfer: {
            HttpBody b = kserve_infer_response(v->model, s, response, o.predictions, o.keys);
            r.body = std::move(b.body);
            if (b.json_size > 0) {
              r.headers.emplace_back("Inference-Header-Content-Length", std::to_string(b.json_size));
              r.content_type = "application/octet-stream";
            }
            break;
          }
        }
      } catch (const Error& e) {
        r.status = 400;
        r.body = json_error(e.what());
      }
    } else {
      r.status = o.status;
      r.body = json_error(o.error);
    }
    v->metrics->count(r.status);
    v->metrics->total_seconds.observe(std::chrono::duration<double>(Clock::now() - arrival).count());
    respond(std::move(r));
  };
  if (!v->batcher->submit(task, /*run_now=*/false)) fail_request(503, "the model's queue is full; retry later");
  // Requests read in the same round on this I/O thread run together, after the last is read.
  std::function<void()> run = [v] { v->batcher->run_queued(); };
  if (!defer_on_io_thread(run)) v->batcher->run_queued();
}

}  // namespace kiln::runtime
