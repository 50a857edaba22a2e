#include "tune/json_object.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>

namespace kiln::tune {

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
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace kiln::tune
