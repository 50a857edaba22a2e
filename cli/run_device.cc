#include "cli/run_device.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "core/device_choice.h"
#include "core/error.h"
#include "models/device_config.h"
#include "models/kernel_library_config.h"

namespace kiln::cli {

void apply_precision_flag(const std::string& flag, ServeConfig& config) {
  std::string upper = flag;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Precision::Kind kind;
  if (!Precision::Kind_Parse(upper, &kind)) fail("--precision ", flag, ": choose default, fp32, tf32 or bf16");
  config.set_precision(kind);
}

void apply_kernel_library(KernelChoice::Library library,
                          const google::protobuf::RepeatedPtrField<KernelChoice>& overrides) {
  models::apply_kernel_library(library, overrides);
}

void apply_kernel_library_flag(const std::string& flag, ServeConfig& config) {
  if (flag == "kiln") config.set_kernel_library(KernelChoice::KILN);
  else if (flag == "vendor") config.set_kernel_library(KernelChoice::VENDOR);
  else fail("--kernel_library ", flag, ": must be kiln or vendor");
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
