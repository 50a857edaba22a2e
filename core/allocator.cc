#include "core/allocator.h"

#include <cstdlib>
#include <new>

#include "core/error.h"
#include "core/sim/sim_allocator.h"

namespace kiln {

void* CpuAllocator::allocate(size_t bytes) {
  if (bytes == 0) bytes = kCpuAlignment;
  size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, rounded);
  if (!p) throw std::bad_alloc();
  return p;
}

void CpuAllocator::deallocate(void* ptr, size_t) { std::free(ptr); }

Allocator* cuda_allocator(int device_index);  // core/cuda/device.cu, or core/no_cuda.cc (nullptr)

Allocator& allocator_for(const Device& device) {
  static CpuAllocator cpu;
  switch (device.kind) {
    case Device::Kind::cpu: return cpu;
    case Device::Kind::sim: return sim::sim_allocator(device.index);
    case Device::Kind::cuda: break;
  }
  Allocator* a = cuda_allocator(device.index);
  if (!a) fail("device ", device.to_string(), " is not available in this build");
  return *a;
}

}  // namespace kiln
