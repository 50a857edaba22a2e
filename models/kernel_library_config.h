#pragma once
// A config's `kernel_library` and `kernel_library_overrides` (TrainConfig, ServeConfig) applied to
// the process (kernels/kernel_library.h). Every entry is checked before anything is set, so a bad
// config changes nothing.
#include "proto/device.pb.h"

namespace kiln::models {

// kiln::Error naming the field ("kernel_library_overrides[1].op: ...") for an op that is not an
// op family, an empty op or one given twice.
void apply_kernel_library(
    KernelChoice::Library library, const google::protobuf::RepeatedPtrField<KernelChoice>& overrides);

}  // namespace kiln::models
