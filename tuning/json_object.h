#pragma once
// Flat JSON objects, the only JSON the tuner speaks: parameter sets and metric lines
// ({"step": 100, "rmse": 1.07}). Parsing goes through protobuf's strict JSON parser, so NaN,
// trailing garbage and duplicate commas are errors, as a trial's metrics file deserves.
#include <map>
#include <optional>
#include <string>
#include <variant>

namespace kiln::tuning {

using JsonScalar = std::variant<double, std::string, bool, std::nullptr_t>;
using JsonObject = std::map<std::string, JsonScalar>;

// Parses `text` as one JSON object whose values are scalars; nullopt (with `error` set) otherwise.
std::optional<JsonObject> parse_flat_json_object(const std::string& text, std::string* error);

// A JSON string literal with the quotes.
std::string json_quote(const std::string& s);

}  // namespace kiln::tuning
