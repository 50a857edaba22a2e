#pragma once
// JSON string literals: the one escaping routine for everything Kiln writes as JSON (server
// responses, tuning parameters, metrics lines).
#include <string>
#include <string_view>

namespace kiln::io {

// Appends "s" with quotes, backslashes and control characters escaped; other bytes (UTF-8
// included) pass through.
inline void append_json_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

}  // namespace kiln::io
