#include "core/allocator.h"

#include <cstdlib>
#include <new>

#include "core/error.h"

namespace kiln {

void* CpuAllocator::allocate(size_t bytes) {
  if (bytes == 0) bytes = kCpuAlignment;
  size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, rounded);
  if (!p) throw std::bad_alloc();
  return p;
}

void CpuAllocator::deallocate(void* ptr, size_t) { std::free(ptr); }

Allocator* cuda_allocator(int device_index);  // defined by the CUDA backend, or below when absent

Allocator& allocator_for(const Device& device) {
  static CpuAllocator cpu;
  if (device.is_cpu()) return cpu;
  Allocator* a = cuda_allocator(device.index);
  if (!a) fail("device ", device.to_string(), " is not available in this build");
  return *a;
}

}  // namespace kiln
