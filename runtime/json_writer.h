#pragma once
// Appends JSON to a string: escaped strings and numbers in their shortest exact form (a float
// printed here reads back as the same float).
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "io/json_text.h"

namespace kiln::runtime {

using io::append_json_string;

template <typename T>
void append_json_number(std::string& out, T v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// {"error": "..."}, the error body of every API.
inline std::string json_error(std::string_view message) {
  std::string out = "{\"error\":";
  append_json_string(out, message);
  out += '}';
  return out;
}

}  // namespace kiln::runtime
