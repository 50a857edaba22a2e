#pragma once
// Parses a request's JSON with simdjson's DOM parser, one parser per thread (reused, so no
// allocation per request once warm). Depth beyond limits.max_depth, invalid UTF-8 and malformed
// JSON are kiln::Errors. The document and the string_views taken from it stay valid until the
// same thread parses again.
#include <simdjson.h>

#include <string_view>

#include "runtime/input_schema.h"

namespace kiln::runtime {

simdjson::dom::element parse_json_document(std::string_view text, const RequestLimits& limits);

}  // namespace kiln::runtime
