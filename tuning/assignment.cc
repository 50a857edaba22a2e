#include "tuning/assignment.h"

#include <charconv>
#include <cmath>

#include "core/error.h"
#include "tuning/json_object.h"

namespace kiln::tuning {

std::string format_number(double v) {
  char buf[64];
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) {
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
    return std::string(buf, r.ptr);
  }
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string format_value(const ParamValue& v) { return v.categorical ? v.category : format_number(v.number); }

std::string assignment_to_json(const Assignment& a) {
  std::string out = "{";
  for (const auto& [name, v] : a) {
    if (out.size() > 1) out += ", ";
    out += json_quote(name) + ": " + (v.categorical ? json_quote(v.category) : format_number(v.number));
  }
  return out + "}";
}

Assignment assignment_from_json(const std::string& json) {
  std::string error;
  auto obj = parse_flat_json_object(json, &error);
  if (!obj) fail("parameters ", json, ": ", error);
  Assignment a;
  for (const auto& [name, v] : *obj) {
    if (const double* d = std::get_if<double>(&v)) {
      a[name] = ParamValue::of(*d);
    } else if (const std::string* s = std::get_if<std::string>(&v)) {
      a[name] = ParamValue::of(*s);
    } else {
      fail("parameters ", json, ": \"", name, "\" is neither a number nor a string");
    }
  }
  return a;
}

std::string assignment_to_text(const Assignment& a) {
  std::string out;
  for (const auto& [name, v] : a) {
    if (!out.empty()) out += ' ';
    out += name + "=" + format_value(v);
  }
  return out;
}

}  // namespace kiln::tuning
