#include "core/sim/sim_allocator.h"

#include <array>
#include <memory>

#include "core/error.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"

namespace kiln::sim {

void* SimAllocator::allocate(size_t bytes) {
  if (sim_streams_capturing() > 0)
    throw Error("sim device memory allocated while a stream captures a graph (CUDA forbids cudaMalloc then)");
  return sim_memory().allocate(bytes);
}

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
