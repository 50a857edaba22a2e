#include "serve/json_document.h"

#include <algorithm>

#include "core/error.h"

namespace kiln::serve {

simdjson::dom::element parse_json_document(std::string_view text, const RequestLimits& limits) {
  thread_local simdjson::dom::parser parser;
  if (parser.max_depth() != static_cast<size_t>(limits.max_depth) &&
      parser.allocate(std::max<size_t>(parser.capacity(), 4096), static_cast<size_t>(limits.max_depth)) !=
          simdjson::SUCCESS)
    fail("out of memory for the JSON parser");
  simdjson::dom::element doc;
  // The text is copied into padded memory when simdjson needs room past its end.
  auto error = parser.parse(text.data(), text.size(), true).get(doc);
  if (error == simdjson::DEPTH_ERROR) fail("malformed JSON: nested deeper than ", limits.max_depth, " levels");
  if (error == simdjson::UTF8_ERROR) fail("malformed JSON: the body is not valid UTF-8");
  if (error) fail("malformed JSON: ", simdjson::error_message(error));
  return doc;
}

}  // namespace kiln::serve
