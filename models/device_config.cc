#include "models/device_config.h"

#include "core/device_choice.h"
#include "core/error.h"

namespace kiln::models {

Device configured_device(DeviceChoice::Kind kind, int index, const std::string& how_to_choose) {
  switch (kind) {
    case DeviceChoice::CPU: return choose_device(Device::Kind::cpu, index, how_to_choose);
    case DeviceChoice::CUDA: return choose_device(Device::Kind::cuda, index, how_to_choose);
    case DeviceChoice::SIM: return choose_device(Device::Kind::sim, index, how_to_choose);
  }
  fail("unknown device ", static_cast<int>(kind), "; ", how_to_choose);
}

}  // namespace kiln::models
