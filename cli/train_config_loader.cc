#include "cli/train_config_loader.h"

#include "io/config_file.h"

namespace kiln::cli {

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  TrainConfig config;
  io::load_config(path, config);
  io::apply_overrides(overrides, config);
  return config;
}

}  // namespace kiln::cli
