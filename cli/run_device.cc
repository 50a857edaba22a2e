#include "cli/run_device.h"

#include <cstdlib>

#include "core/device_choice.h"
#include "core/error.h"

namespace kiln::cli {

namespace {

Device::Kind kind_of(DeviceChoice::Kind kind) {
  switch (kind) {
    case DeviceChoice::CPU: return Device::Kind::cpu;
    case DeviceChoice::CUDA: return Device::Kind::cuda;
    case DeviceChoice::SIM: return Device::Kind::sim;
  }
  fail("unknown device ", static_cast<int>(kind));
}

}  // namespace

Device run_device(DeviceChoice::Kind kind, int index, const std::string& verb, const std::string& how_to_choose) {
  const Device d = choose_device(kind_of(kind), index, how_to_choose);
  if (!d.is_cpu())
    fail("kiln ", verb, " does not run on ", d.to_string(), " yet, only on the CPU (docs/cuda.md says what runs where); ",
         how_to_choose);
  return d;
}

void apply_device_flag(const std::string& flag, ServeConfig& config) {
  const size_t colon = flag.find(':');
  switch (parse_device_kind(flag.substr(0, colon))) {
    case Device::Kind::cpu: config.set_device(DeviceChoice::CPU); break;
    case Device::Kind::cuda: config.set_device(DeviceChoice::CUDA); break;
    case Device::Kind::sim: config.set_device(DeviceChoice::SIM); break;
  }
  config.set_device_index(-1);
  if (colon == std::string::npos) return;
  const std::string index = flag.substr(colon + 1);
  char* end = nullptr;
  const long i = std::strtol(index.c_str(), &end, 10);
  if (index.empty() || *end != '\0' || i < 0 || i > 1024) fail("--device ", flag, ": the index after ':' must be a number >= 0");
  config.set_device_index(static_cast<int>(i));
}

}  // namespace kiln::cli
