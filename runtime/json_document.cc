#include "runtime/json_document.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace kiln::runtime {

namespace {

// NaN, Infinity or -Infinity outside a string (what Python's json.dumps and others write for
// non-finite floats), else null.
const char* non_finite_token(std::string_view text) {
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    for (const char* t : {"NaN", "-Infinity", "Infinity"})
      if (text.substr(i).starts_with(t)) return t;
  }
  return nullptr;
}

}  // namespace

simdjson::dom::element parse_json_document(std::string_view text, const RequestLimits& limits) {
  thread_local simdjson::dom::parser parser;
  if (parser.max_depth() != static_cast<size_t>(limits.max_depth) &&
      parser.allocate(std::max<size_t>(parser.capacity(), 4096), static_cast<size_t>(limits.max_depth)) !=
          simdjson::SUCCESS)
    fail("out of memory for the JSON parser");
  // simdjson reads up to SIMDJSON_PADDING bytes past the end, which a request body does not
  // own: copy it into this thread's padded buffer (a memcpy, instead of the allocation simdjson
  // would make per call).
  thread_local std::vector<char> padded;
  if (padded.size() < text.size() + simdjson::SIMDJSON_PADDING) padded.resize(text.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(padded.data(), text.data(), text.size());
  std::memset(padded.data() + text.size(), 0, simdjson::SIMDJSON_PADDING);
  simdjson::dom::element doc;
  auto error = parser.parse(padded.data(), text.size(), false).get(doc);
  if (error == simdjson::DEPTH_ERROR) fail("malformed JSON: nested deeper than ", limits.max_depth, " levels");
  if (error == simdjson::UTF8_ERROR) fail("malformed JSON: the body is not valid UTF-8");
  if (error) {
    if (const char* token = non_finite_token(text))
      fail("malformed JSON: ", token, " is not valid JSON (a client's encoder wrote a non-finite float); send null for a "
           "missing value");
    fail("malformed JSON: ", simdjson::error_message(error));
  }
  return doc;
}

}  // namespace kiln::runtime
