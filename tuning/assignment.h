#pragma once
// A trial's parameters: name -> value, active parameters only. Values are numbers (DOUBLE,
// INTEGER, DISCRETE) or categories; their text form is what the trial command and the JSON in
// KILN_TUNE_PARAMS carry, so it must round-trip exactly (shortest round-trip decimal).
#include <map>
#include <string>

namespace kiln::tuning {

struct ParamValue {
  double number = 0;
  std::string category;
  bool categorical = false;

  static ParamValue of(double v) { return {v, {}, false}; }
  static ParamValue of(std::string c) { return {0, std::move(c), true}; }
  bool operator==(const ParamValue&) const = default;
};

using Assignment = std::map<std::string, ParamValue>;

// "0.001", "64", "adam": integers without a decimal point, other numbers in the shortest form
// that parses back to the same double.
std::string format_value(const ParamValue& v);
std::string format_number(double v);

// {"batch_size": 64, "optimizer": "adam"}; keys in name order.
std::string assignment_to_json(const Assignment& a);
// The inverse; kiln::Error on anything but a flat object of numbers and strings.
Assignment assignment_from_json(const std::string& json);

// "batch_size=64 optimizer=adam" for tables and logs.
std::string assignment_to_text(const Assignment& a);

}  // namespace kiln::tuning
