#pragma once
// KServe v2 / Open Inference Protocol inference requests:
//   {"id": "...", "parameters": {"binary_data_output": true},
//    "inputs": [{"name": "mother_age", "shape": [2, 1], "datatype": "FP32", "data": [26.0, 31.5]}, ...],
//    "outputs": [{"name": "predictions", "parameters": {"binary_data": true}}]}
// With the binary tensor data extension the JSON header is followed by raw little-endian tensor
// bytes (BYTES elements as a 4-byte length and the bytes), and each such input says
// "parameters": {"binary_data_size": N}; the header's length comes in the
// Inference-Header-Content-Length HTTP header.
// Tabular models take one input per raw feature, shape [N] or [N, 1]; image models one input of
// shape [N, ...]. Errors are kiln::Error naming the input.
#include <string>
#include <string_view>
#include <vector>

#include "runtime/json_request.h"

namespace kiln::runtime {

struct RequestedOutput {
  std::string name;
  bool binary = false;
};

// What the response must carry and in which form.
struct KserveResponseSpec {
  std::string id;
  bool binary_output = false;            // parameters.binary_data_output
  std::vector<RequestedOutput> outputs;  // empty: every output, binary_output decides the form
};

struct KserveRequest {
  ParsedRequest parsed;
  KserveResponseSpec response;
};

// json_size: length of the JSON header; body.size() when there is no binary data.
void parse_kserve_request(std::string_view body, size_t json_size, const InputSchema& schema,
                          const RequestLimits& limits, KserveRequest& out);

}  // namespace kiln::runtime
