#pragma once
// How a verb runs: its device (models::configured_device, decided once, before any data is read),
// the kernel library and the command-line flags that set them.
#include <string>

#include "core/device.h"
#include "models/device_config.h"
#include "proto/device.pb.h"
#include "proto/serve_config.pb.h"

namespace kiln::cli {

// A config's kernel_library and kernel_library_overrides, applied to the process
// (models/kernel_library_config.h); prints the warnings to stderr.
void apply_kernel_library(KernelChoice::Library library,
                          const google::protobuf::RepeatedPtrField<KernelChoice>& overrides);

// --kernel_library kiln | vendor into `config`'s kernel_library.
void apply_kernel_library_flag(const std::string& flag, ServeConfig& config);

// --device cpu | cuda[:INDEX] | sim[:INDEX] into `config`'s device and device_index.
void apply_device_flag(const std::string& flag, ServeConfig& config);

// --precision default | fp32 | tf32 | bf16 (any case) into `config`'s precision.
void apply_precision_flag(const std::string& flag, ServeConfig& config);

}  // namespace kiln::cli
