#pragma once
// What a request may carry, taken from a servable's signature: the raw columns in the order the
// Transformer binds them (signature inputs, then the key), their JSON types, which may be null,
// and the NA spellings of the training CSV (a client's "NA" is missing, exactly as in training).
// Request parsers depend on this alone, so they build and fuzz without the model code.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::runtime {

struct InputColumn {
  std::string name;
  bool is_string = false;  // categorical raw value; numbers are accepted and written as text
  bool nullable = true;    // null = missing value (the recorded policy applies)
  bool multi_valued = false;
  std::string delimiter;   // multi-valued: a JSON array is joined with it
  bool is_key = false;     // echoed back; never transformed
};

struct InputSchema {
  std::vector<InputColumn> columns;
  std::string label;                    // accepted and ignored
  std::vector<std::string> na_values;   // strings that mean "missing"
  // Image models: one tensor input of this many elements per example (columns holds its name).
  int64_t tensor_elements = 0;
  bool tensor() const { return tensor_elements > 0; }

  int find(std::string_view name) const {
    for (size_t i = 0; i < columns.size(); ++i)
      if (columns[i].name == name) return static_cast<int>(i);
    return -1;
  }
  bool is_na_string(std::string_view s) const {
    for (const std::string& v : na_values)
      if (v == s) return true;
    return false;
  }
  // "a, b, c" for error messages.
  std::string column_list() const {
    std::string out;
    for (const InputColumn& c : columns) {
      if (!out.empty()) out += ", ";
      out += c.name;
    }
    return out;
  }
};

struct RequestLimits {
  int64_t max_rows = 10000;  // examples per request
  int max_depth = 64;        // JSON nesting
};

}  // namespace kiln::runtime
