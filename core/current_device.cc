#include "core/current_device.h"

#include "core/device_memory_backend.h"

namespace kiln {

namespace {
thread_local int t_sim_device = 0;
}  // namespace

void make_device_current(const Device& device) {
  switch (device.kind) {
    case Device::Kind::cpu: return;
    case Device::Kind::sim: t_sim_device = device.index; return;
    case Device::Kind::cuda: return cuda_memory::set_current_device(device.index);
  }
}

int current_sim_device() { return t_sim_device; }

}  // namespace kiln
