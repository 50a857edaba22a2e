#pragma once
// The sim device's memory: an arena whose addresses the host cannot dereference.
//
// allocate() hands out tagged, non-canonical addresses (bits 48..62 hold kSimAddressTag): on
// x86-64 (4- and 5-level paging) any host load or store through one raises SIGSEGV at once, and on
// AArch64 the tag lies below the top byte that TBI ignores, so it faults there too. The tagged
// address is not the host address plus a tag: each allocation gets a fresh range of a private,
// never-reused address space, with a guard gap after it, and the arena maps it to host memory. So
// a stale pointer never aliases a newer allocation, and untag() can tell "past the end" from
// "freed" from "never a sim pointer".
//
// Only the sim's copies and kernels call untag(); it checks that [ptr, ptr + bytes) lies inside one
// live allocation and throws kiln::InternalError naming the fault otherwise.
//
// Poison: fresh memory is filled with the 16-bit word kAllocPoison (a NaN in f16, bf16, f32 and
// f64, a negative int32/int64), so reading memory nothing wrote shows up as NaN; freed memory with
// kFreePoison (a different NaN, a large positive int). A freed block stays mapped and poisoned in a
// bounded quarantine before its host memory is released, so a kernel that untagged a pointer before
// the free and reads after it sees poison, not the old values.
//
// Thread-safe. Usage:
//   SimMemory& mem = sim_memory();                  // the arena of every sim device
//   float* d = static_cast<float*>(mem.allocate(n * sizeof(float)));
//   float* h = mem.untag_array(d, n);               // only inside sim copies and kernels
//   mem.free(d);
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>

namespace kiln::sim {

constexpr uint64_t kSimAddressTag = 0x5EA5ull << 48;    // bits 48..62; bit 63 stays clear
constexpr uint64_t kSimAddressTagMask = 0x7FFFull << 48;
constexpr uint16_t kAllocPoison = 0xFFF9;  // little-endian bytes F9 FF
constexpr uint16_t kFreePoison = 0x7FF5;   // little-endian bytes F5 7F
// Allocations start on this boundary (cudaMalloc's), in both the tagged and the host address space.
constexpr size_t kSimAlignment = 256;
// Devices sim:0 .. sim:7 exist, enough to simulate a multi-GPU machine in one process. They share
// one arena, so a copy between two of them is a device-to-device copy.
constexpr int kSimDeviceCount = 8;
// `device_index`, or kiln::Error when there is no such sim device.
int checked_sim_device(int device_index);

// True when `ptr` carries the sim tag (live, freed or never allocated alike).
inline bool is_sim_pointer(const void* ptr) {
  return (reinterpret_cast<uint64_t>(ptr) & kSimAddressTagMask) == kSimAddressTag;
}

struct SimMemoryStats {
  size_t live_bytes = 0;         // bytes callers asked for, of the allocations not yet freed
  size_t peak_live_bytes = 0;    // highest live_bytes since construction or reset_peak()
  size_t live_allocations = 0;
  uint64_t allocations = 0;      // allocate() calls
  uint64_t frees = 0;            // free() calls
  size_t quarantined_bytes = 0;  // freed and poisoned, host memory not yet released
};

class SimMemory {
 public:
  static constexpr size_t kDefaultQuarantineBytes = size_t{64} << 20;
  explicit SimMemory(size_t quarantine_bytes = kDefaultQuarantineBytes);
  ~SimMemory();
  SimMemory(const SimMemory&) = delete;
  SimMemory& operator=(const SimMemory&) = delete;

  // A tagged address of `bytes` (0 allowed), kSimAlignment-aligned, filled with kAllocPoison.
  void* allocate(size_t bytes);
  // Poisons the block with kFreePoison and moves it to the quarantine. Immediate: unlike cudaFree
  // it does not wait for streams still using the block (use free_async for that). nullptr is a
  // no-op; an interior pointer, a double free or a non-sim pointer throws.
  void free(void* device_ptr);

  // The host address of [device_ptr, device_ptr + bytes), for the sim's copies and kernels only.
  // Throws kiln::InternalError unless the range lies inside one live allocation. (nullptr, 0)
  // gives nullptr, like a zero-length cudaMemcpy.
  void* untag(const void* device_ptr, size_t bytes) const;
  // untag() for `count` elements of T (a kernel's typed argument).
  template <typename T>
  T* untag_array(T* device_ptr, size_t count) const {
    return static_cast<T*>(untag(device_ptr, count * sizeof(T)));
  }

  SimMemoryStats stats() const;
  void reset_peak();

 private:
  struct Allocation {
    size_t bytes = 0;       // what the caller asked for
    void* host = nullptr;   // kSimAlignment-aligned host block
  };
  struct Freed {
    size_t bytes = 0;
    void* host = nullptr;   // still mapped while quarantined, nullptr once released
  };
  void release_quarantine_over_limit();
  void forget_oldest_frees();

  const size_t quarantine_limit_;
  mutable std::mutex mutex_;
  std::map<uint64_t, Allocation> live_;  // tagged start -> allocation
  std::map<uint64_t, Freed> freed_;      // tagged start -> freed block (bounded history)
  std::deque<uint64_t> freed_order_;     // keys of freed_, oldest first
  std::deque<uint64_t> quarantine_;      // keys of freed_ whose host block is still mapped
  size_t quarantined_bytes_ = 0;
  SimMemoryStats stats_;
};

// The process-wide arena shared by every sim device (never destroyed: tensors with static
// lifetime may free into it during exit).
SimMemory& sim_memory();

}  // namespace kiln::sim
