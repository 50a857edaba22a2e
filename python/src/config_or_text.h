#pragma once
// What the Python functions take for a config (a FeatureSpec, a TrainConfig): a file (.pbtxt or
// .json; io::load_config resolves its relative paths from the file) or the message's text.
#include <filesystem>
#include <string>

#include "io/config_file.h"

namespace kiln::python {

template <typename Message>
Message read_config_or_text(const std::string& config_or_path, const std::string& name) {
  Message m;
  if (config_or_path.find('\n') == std::string::npos && std::filesystem::exists(config_or_path))
    io::load_config(config_or_path, m);
  else
    io::parse_config_text(config_or_path, name, m);
  return m;
}

}  // namespace kiln::python
