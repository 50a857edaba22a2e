#pragma once
#include <string>
#include <vector>

#include "proto/train_config.pb.h"

namespace kiln::cli {

// How to choose another device, ending the error of an unusable `device` in a TrainConfig.
inline constexpr const char* kTrainDeviceChoice = "set device: CPU in the config or pass --set device=CPU";

// Reads a TrainConfig file and applies the --set overrides.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace kiln::cli
