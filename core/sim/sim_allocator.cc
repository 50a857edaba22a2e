#include "core/sim/sim_allocator.h"

#include <array>
#include <memory>

#include "core/sim/sim_memory.h"

namespace kiln::sim {

void* SimAllocator::allocate(size_t bytes) { return sim_memory().allocate(bytes); }

void SimAllocator::deallocate(void* ptr, size_t) { sim_memory().free(ptr); }

Allocator& sim_allocator(int device_index) {
  checked_sim_device(device_index);
  // Never destroyed: tensors with static lifetime may free into them during exit.
  static auto* allocators = [] {
    auto* all = new std::array<std::unique_ptr<SimAllocator>, kSimDeviceCount>();
    for (int i = 0; i < kSimDeviceCount; ++i) (*all)[i] = std::make_unique<SimAllocator>(i);
    return all;
  }();
  return *(*allocators)[device_index];
}

}  // namespace kiln::sim
