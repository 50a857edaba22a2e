#include "runtime/responses.h"

#include <cstring>

#include "core/error.h"
#include "runtime/json_writer.h"

namespace kiln::runtime {

namespace {

// Output i of the signature for example r, as JSON: a list of the output's width.
void append_value(std::string& out, const Signature& sig, const Predictions& p, const std::vector<std::string>& keys,
                  int i, int64_t r) {
  if (sig.outputs(i).name() == "key") {
    append_json_string(out, r < static_cast<int64_t>(keys.size()) ? keys[static_cast<size_t>(r)] : "");
    return;
  }
  const int w = p.output_width[static_cast<size_t>(i)];
  out += '[';
  for (int k = 0; k < w; ++k) {
    if (k) out += ',';
    if (p.output_is_string[static_cast<size_t>(i)])
      append_json_string(out, p.string_outputs[static_cast<size_t>(i)][static_cast<size_t>(r * w + k)]);
    else if (p.output_is_int[static_cast<size_t>(i)])
      append_json_number(out, p.int_outputs[static_cast<size_t>(i)][static_cast<size_t>(r * w + k)]);
    else
      append_json_number(out, p.float_outputs[static_cast<size_t>(i)][static_cast<size_t>(r * w + k)]);
  }
  out += ']';
}

// The outputs a response carries: the signature's, less "key" when the request sent no key.
std::vector<int> shown_outputs(const Signature& sig, const std::vector<std::string>& keys) {
  std::vector<int> out;
  for (int i = 0; i < sig.outputs_size(); ++i)
    if (sig.outputs(i).name() != "key" || !keys.empty()) out.push_back(i);
  return out;
}

}  // namespace

std::string tf_predict_response(const Signature& sig, const Predictions& p, const std::vector<std::string>& keys,
                                bool columnar) {
  std::string out;
  out.reserve(static_cast<size_t>(64 + p.rows * 32));
  const std::vector<int> shown = shown_outputs(sig, keys);
  const size_t outputs = shown.size();
  if (!columnar) {
    out += "{\"predictions\":[";
    for (int64_t r = 0; r < p.rows; ++r) {
      if (r) out += ',';
      if (outputs == 1) {
        append_value(out, sig, p, keys, shown[0], r);
        continue;
      }
      out += '{';
      for (int i : shown) {
        if (i != shown[0]) out += ',';
        append_json_string(out, sig.outputs(i).name());
        out += ':';
        append_value(out, sig, p, keys, i, r);
      }
      out += '}';
    }
    out += "]}";
    return out;
  }
  out += "{\"outputs\":";
  if (outputs > 1) out += '{';
  for (int i : shown) {
    if (i != shown[0]) out += ',';
    if (outputs > 1) {
      append_json_string(out, sig.outputs(i).name());
      out += ':';
    }
    out += '[';
    for (int64_t r = 0; r < p.rows; ++r) {
      if (r) out += ',';
      append_value(out, sig, p, keys, i, r);
    }
    out += ']';
  }
  if (outputs > 1) out += '}';
  out += '}';
  return out;
}

std::string jsonl_predictions(const Signature& sig, const Predictions& p, const std::vector<std::string>& keys) {
  std::string out;
  const std::vector<int> shown = shown_outputs(sig, keys);
  for (int64_t r = 0; r < p.rows; ++r) {
    out += '{';
    for (int i : shown) {
      if (i != shown[0]) out += ',';
      append_json_string(out, sig.outputs(i).name());
      out += ':';
      append_value(out, sig, p, keys, i, r);
    }
    out += "}\n";
  }
  return out;
}

std::string tf_classify_response(const Servable& s, const Predictions& p) {
  const HeadSpec::Type type = s.manifest().model().head().type();
  if (type == HeadSpec::REGRESSION) fail("this model is a regression model: use :regress or :predict");
  std::string out = "{\"result\":[";
  for (int64_t r = 0; r < p.rows; ++r) {
    if (r) out += ',';
    out += '[';
    if (type == HeadSpec::BINARY) {
      float prob = p.float_outputs[0][static_cast<size_t>(r)];
      out += "[\"0\",";
      append_json_number(out, 1.0f - prob);
      out += "],[\"1\",";
      append_json_number(out, prob);
      out += ']';
    } else {
      const int w = p.output_width[0];
      for (int k = 0; k < w; ++k) {
        if (k) out += ',';
        out += '[';
        append_json_string(out, s.class_name(k));
        out += ',';
        append_json_number(out, p.float_outputs[0][static_cast<size_t>(r * w + k)]);
        out += ']';
      }
    }
    out += ']';
  }
  out += "]}";
  return out;
}

std::string tf_regress_response(const Servable& s, const Predictions& p) {
  const HeadSpec::Type type = s.manifest().model().head().type();
  if (type == HeadSpec::MULTICLASS) fail("this model is a multiclass classifier: use :classify or :predict");
  std::string out = "{\"result\":[";
  for (int64_t r = 0; r < p.rows; ++r) {
    if (r) out += ',';
    append_json_number(out, p.float_outputs[0][static_cast<size_t>(r)]);
  }
  out += "]}";
  return out;
}

HttpBody kserve_infer_response(const std::string& model_name, const Servable& s, const KserveResponseSpec& req,
                               const Predictions& p, const std::vector<std::string>& keys) {
  const Signature& sig = s.signature();
  std::vector<RequestedOutput> wanted = req.outputs;
  if (wanted.empty())
    for (int i : shown_outputs(sig, keys)) wanted.push_back({sig.outputs(i).name(), req.binary_output});
  std::string json = "{\"model_name\":";
  append_json_string(json, model_name);
  json += ",\"model_version\":";
  append_json_string(json, std::to_string(s.version()));
  if (!req.id.empty()) {
    json += ",\"id\":";
    append_json_string(json, req.id);
  }
  json += ",\"outputs\":[";
  std::string binary;
  bool first = true;
  for (const RequestedOutput& w : wanted) {
    int i = -1;
    for (int k = 0; k < sig.outputs_size(); ++k)
      if (sig.outputs(k).name() == w.name) i = k;
    if (i < 0) {
      std::string names;
      for (const SignatureOutput& o : sig.outputs()) names += (names.empty() ? "" : ", ") + o.name();
      fail("unknown output '", w.name, "' (the model has: ", names, ")");
    }
    const SignatureOutput& o = sig.outputs(i);
    const bool is_key = o.name() == "key";
    const int64_t width = is_key ? 1 : p.output_width[static_cast<size_t>(i)];
    const bool is_string = is_key || p.output_is_string[static_cast<size_t>(i)];
    // The text of row r of a BYTES output (width 1).
    auto text = [&](int64_t r) -> const std::string& {
      static const std::string none;
      if (!is_key) return p.string_outputs[static_cast<size_t>(i)][static_cast<size_t>(r)];
      return r < static_cast<int64_t>(keys.size()) ? keys[static_cast<size_t>(r)] : none;
    };
    if (!first) json += ',';
    first = false;
    json += "{\"name\":";
    append_json_string(json, o.name());
    json += ",\"datatype\":\"" + o.dtype() + "\",\"shape\":[" + std::to_string(p.rows) + "," + std::to_string(width) + "]";
    if (w.binary) {
      size_t before = binary.size();
      for (int64_t r = 0; r < p.rows; ++r) {
        if (is_string) {
          const std::string& k = text(r);
          uint32_t n = static_cast<uint32_t>(k.size());
          binary.append(reinterpret_cast<const char*>(&n), 4);
          binary += k;
        } else if (p.output_is_int[static_cast<size_t>(i)]) {
          const auto& v = p.int_outputs[static_cast<size_t>(i)];
          binary.append(reinterpret_cast<const char*>(v.data() + r * width), static_cast<size_t>(width) * 8);
        } else {
          const auto& v = p.float_outputs[static_cast<size_t>(i)];
          binary.append(reinterpret_cast<const char*>(v.data() + r * width), static_cast<size_t>(width) * 4);
        }
      }
      json += ",\"parameters\":{\"binary_data_size\":" + std::to_string(binary.size() - before) + "}}";
    } else {
      json += ",\"data\":[";
      for (int64_t r = 0; r < p.rows; ++r) {
        for (int64_t k = 0; k < width; ++k) {
          if (r || k) json += ',';
          if (is_string)
            append_json_string(json, text(r));
          else if (p.output_is_int[static_cast<size_t>(i)])
            append_json_number(json, p.int_outputs[static_cast<size_t>(i)][static_cast<size_t>(r * width + k)]);
          else
            append_json_number(json, p.float_outputs[static_cast<size_t>(i)][static_cast<size_t>(r * width + k)]);
        }
      }
      json += "]}";
    }
  }
  json += "]}";
  HttpBody out;
  if (!binary.empty()) out.json_size = json.size();
  out.body = std::move(json);
  out.body += binary;
  return out;
}

}  // namespace kiln::runtime
