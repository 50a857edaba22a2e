#pragma once
// A config's `device` and `device_index` (TrainConfig, ServeConfig, --device) as a Device, through
// core/device_choice.h: an unusable choice fails before any data is read, ending with
// `how_to_choose`.
#include <string>

#include "core/device.h"
#include "proto/device.pb.h"

namespace kiln::models {

Device configured_device(DeviceChoice::Kind kind, int index, const std::string& how_to_choose);

}  // namespace kiln::models
