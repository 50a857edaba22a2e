#pragma once
// A number as printf writes it, for the human-readable views of analysis (summary, report).
#include <cstdio>
#include <string>

namespace kiln::transform {

// `format` takes one double (e.g. "%.4g"); the text is cut at 63 characters.
inline std::string number_text(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace kiln::transform
