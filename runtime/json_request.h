#pragma once
// TensorFlow Serving REST request bodies, parsed with simdjson into raw rows:
//   predict:           {"instances": [{"f": v, ...}, ...]}   (row format)
//                      {"inputs": {"f": [v, ...], ...}}       (columnar format)
//   classify/regress:  {"examples": [{...}], "context": {...}} (context values apply to every example)
// and JSON Lines for `kiln predict` (one instance object per line).
// Every error is a kiln::Error whose message names the place: "instances[3].mother_age: expected
// a number, got a string".
#include <string_view>
#include <vector>

#include "runtime/input_schema.h"
#include "runtime/request_rows.h"

namespace kiln::runtime {

struct ParsedRequest {
  RequestRows rows;           // tabular models
  std::vector<float> tensor;  // image models: [rows, tensor_elements]
  int64_t count = 0;          // examples
  bool columnar = false;      // the request used "inputs": answer with "outputs"
};

enum class TfApi { kPredict, kClassify, kRegress };

// `body` need not be padded: it is copied when simdjson needs room past its end.
void parse_tf_request(std::string_view body, TfApi api, const InputSchema& schema, const RequestLimits& limits,
                      ParsedRequest& out);

// JSON Lines: one instance per non-empty line; errors name the line ("rows.jsonl:12").
void parse_json_lines(std::string_view text, const std::string& file, const InputSchema& schema,
                      const RequestLimits& limits, ParsedRequest& out);

}  // namespace kiln::runtime
