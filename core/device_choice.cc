#include "core/device_choice.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/error.h"
#include "core/sim/sim_memory.h"

namespace kiln {

int local_rank() {
  for (const char* var : kLocalRankVariables)
    if (const char* v = std::getenv(var)) {
      char* end = nullptr;
      long r = std::strtol(v, &end, 10);
      if (end != v && *end == '\0' && r >= 0) return static_cast<int>(r);
    }
  return 0;
}

Device choose_device(Device::Kind kind, int index, const std::string& how_to_choose) {
  switch (kind) {
    case Device::Kind::cpu:
      return Device::cpu();
    case Device::Kind::sim: {
      const int i = index < 0 ? local_rank() % sim::kSimDeviceCount : index;
      if (i >= sim::kSimDeviceCount)
        fail("device_index ", i, ": there are ", sim::kSimDeviceCount, " simulated devices (0-",
             sim::kSimDeviceCount - 1, ")");
      return Device::sim(i);
    }
    case Device::Kind::cuda: {
      const std::string why = cuda_unavailable_reason();
      if (!why.empty()) fail("device: CUDA, but no CUDA device is visible to this process (", why, "); ", how_to_choose);
      const int count = cuda_device_count();
      const int i = index < 0 ? local_rank() % count : index;
      if (i >= count)
        fail("device_index ", i, ", but this process sees ", count, " CUDA device", count == 1 ? "" : "s",
             " (0-", count - 1, "; CUDA_VISIBLE_DEVICES selects which)");
      return Device::cuda(i);
    }
  }
  fail("unknown device kind");
}

Device::Kind parse_device_kind(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "cpu") return Device::Kind::cpu;
  if (n == "cuda") return Device::Kind::cuda;
  if (n == "sim") return Device::Kind::sim;
  fail("unknown device '", name, "': choose cpu, cuda or sim");
}

}  // namespace kiln
