#pragma once
// kiln::allocator_for(Device::sim(i)): the Allocator interface (Buffer, Tensor) over the sim arena.
// Frees are immediate and wait for no stream: a tensor dropped while a queued task still uses it
// makes that task fail with "use after free" at the next synchronize(), which is the point.
#include "core/allocator.h"

namespace kiln::sim {

class SimAllocator final : public Allocator {
 public:
  explicit SimAllocator(int device_index) : device_index_(device_index) {}
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  Device device() const override { return Device::sim(device_index_); }

 private:
  int device_index_;
};

// The allocator of sim device `device_index`; throws kiln::Error for a device that does not exist.
Allocator& sim_allocator(int device_index);

}  // namespace kiln::sim
