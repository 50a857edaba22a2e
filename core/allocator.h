#pragma once
// Device memory allocators. The CPU allocator returns 64-byte aligned blocks (a cache line, and
// the alignment AVX-512 loads want). The CUDA backend adds a caching allocator behind the same
// interface, the sim device its arena (core/sim/sim_allocator.h).
#include <cstddef>
#include <memory>

#include "core/device.h"

namespace kiln {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual Device device() const = 0;
};

constexpr size_t kCpuAlignment = 64;

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  Device device() const override { return Device::cpu(); }
};

// The process-wide allocator for a device.
Allocator& allocator_for(const Device& device);

}  // namespace kiln
