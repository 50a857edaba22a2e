#pragma once
#include <string>
#include <vector>

#include "proto/train_config.pb.h"

namespace kiln::cli {

// Reads a TrainConfig file and applies the --set overrides.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace kiln::cli
