#pragma once
// The identity of an analysis: example shards record the fingerprint of the TransformState they
// were transformed with, and training refuses shards whose fingerprint differs from its state's.
#include <string>

#include "proto/transform_state.pb.h"

namespace kiln::transform {

// 16 hex digits: XXH3-64 of the state's deterministic protobuf serialization.
std::string state_fingerprint(const TransformState& state);

}  // namespace kiln::transform
