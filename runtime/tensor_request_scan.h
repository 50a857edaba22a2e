#pragma once
// The common image request, {"instances": [[...], ...]} with nothing but nested arrays of numbers,
// read straight from the text: no DOM tape, no per-number dispatch. simdjson's DOM took ~7% of a
// CNN server's time on 784-number requests (bench/results/serve.md). Anything else — other keys,
// objects, strings, a wrong count, bad or unusual numbers — returns false, and the caller parses
// the body the general way, which also words every error.
#include <cstdint>
#include <string_view>
#include <vector>

#include "runtime/input_schema.h"

namespace kiln::runtime {

// Appends the instances to `out`, `elements` floats each (as the general parser reads them: the
// JSON number's correctly rounded double, rounded to float), sets `count` to their number and
// returns true; on false `out` and `count` are unchanged.
bool scan_plain_tensor_instances(std::string_view body, int64_t elements, const RequestLimits& limits,
                                 std::vector<float>& out, int64_t& count);

}  // namespace kiln::runtime
