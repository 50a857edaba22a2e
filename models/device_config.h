#pragma once
// A config's `device` and `device_index` (TrainConfig, ServeConfig, --device) as a Device, through
// core/device_choice.h: an unusable choice fails before any data is read, ending with
// `how_to_choose`.
#include <string>

#include "core/device.h"
#include "core/stream.h"
#include "proto/device.pb.h"

namespace kiln::models {

Device configured_device(DeviceChoice::Kind kind, int index, const std::string& how_to_choose);

// The precision of GEMMs and convolutions for training on `device`: DEFAULT is FP32 on the CPU
// and sim, TF32 on CUDA (tensor cores); FP32, TF32 and BF16 as asked on every device.
MathPrecision training_precision(Precision::Kind kind, const Device& device);
// For serving a version exported at `exported` (FP32 when the manifest predates the field) with
// ServeConfig's `requested`: requested unless DEFAULT, else the exported one, on every device.
MathPrecision serving_precision(Precision::Kind requested, Precision::Kind exported, const Device& device);
// FP32, TF32 or BF16.
Precision::Kind precision_kind(MathPrecision p);

}  // namespace kiln::models
