#include "tuning/json_object.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include "io/json_text.h"

namespace kiln::tuning {

namespace pb = google::protobuf;

std::optional<JsonObject> parse_flat_json_object(const std::string& text, std::string* error) {
  pb::Struct s;
  auto status = pb::util::JsonStringToMessage(text, &s);
  if (!status.ok()) {
    *error = "not a JSON object (" + std::string(status.message()) + ")";
    return std::nullopt;
  }
  JsonObject out;
  for (const auto& [key, value] : s.fields()) {
    switch (value.kind_case()) {
      case pb::Value::kNumberValue: out[key] = value.number_value(); break;
      case pb::Value::kStringValue: out[key] = value.string_value(); break;
      case pb::Value::kBoolValue: out[key] = value.bool_value(); break;
      case pb::Value::kNullValue: out[key] = nullptr; break;
      default:
        *error = "\"" + key + "\" is not a number, string, boolean or null";
        return std::nullopt;
    }
  }
  return out;
}

std::string json_quote(const std::string& s) {
  std::string out;
  io::append_json_string(out, s);
  return out;
}

}  // namespace kiln::tuning
