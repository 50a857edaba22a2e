// libFuzzer target for everything a client controls before the model runs: TensorFlow Serving
// bodies (predict, classify), KServe v2 bodies with binary tensor data, and JSON Lines. Any input
// must end in a parsed request or a kiln::Error; a crash, a sanitizer report, a hang or another
// exception type is a bug. Built and run by scripts/fuzz.sh (clang, ASan + UBSan).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "runtime/json_request.h"
#include "runtime/kserve_request.h"

namespace {

using namespace kiln::runtime;

InputSchema tabular() {
  InputSchema s;
  s.columns = {{"is_male", true, true, false, "", false},
               {"mother_age", false, true, false, "", false},
               {"plurality", true, true, false, "", false},
               {"gestation_weeks", false, false, false, "", false},
               {"tags", true, true, true, "|", false},
               {"key", true, true, false, "", true}};
  s.label = "weight_pounds";
  s.na_values = {"", "NA"};
  return s;
}

InputSchema image() {
  InputSchema s;
  s.columns = {{"image", false, false, false, "", false}};
  s.tensor_elements = 4;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const InputSchema schemas[] = {tabular(), image()};
  if (size < 2) return 0;
  // First byte: which parser and schema; second: where the KServe JSON header ends.
  const uint8_t mode = data[0];
  const size_t split = data[1];
  std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  const InputSchema& schema = schemas[mode & 1];
  RequestLimits limits;
  limits.max_rows = 64;
  limits.max_depth = 32;
  try {
    switch ((mode >> 1) % 4) {
      case 0: {
        ParsedRequest p;
        parse_tf_request(body, TfApi::kPredict, schema, limits, p);
        for (int64_t r = 0; r < p.rows.rows(); ++r)
          for (size_t c = 0; c < schema.columns.size() && !schema.tensor(); ++c) (void)p.rows.field(r, static_cast<int>(c));
        break;
      }
      case 1: {
        ParsedRequest p;
        parse_tf_request(body, TfApi::kClassify, schema, limits, p);
        break;
      }
      case 2: {
        KserveRequest k;
        parse_kserve_request(body, std::min(split * 4, body.size()), schema, limits, k);
        break;
      }
      default: {
        ParsedRequest p;
        parse_json_lines(body, "fuzz.jsonl", schema, limits, p);
        break;
      }
    }
  } catch (const kiln::Error&) {
  }
  return 0;
}
