#pragma once
// A caching device allocator: freed blocks stay in per-size-class, per-stream free lists and are
// handed out again, so a training loop that allocates the same sizes every step stops calling
// the device's malloc after its first step. The policy lives here, in plain C++, behind a small
// backend interface (device malloc/free and stream events); core/cuda/device.cu supplies the CUDA
// backend, and the tests drive the policy with a fake one on any machine.
//
// Stream order: a block freed while work on stream S may still read it is reused at once by S
// (S runs in order); another stream takes it only after the event recorded at the free has
// completed. Nothing here ever blocks on the device except empty_cache() and an out-of-memory
// retry.
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace kiln::cuda {

// What the allocator needs from the device. `stream` and `event` are opaque handles
// (cudaStream_t, cudaEvent_t in the CUDA backend).
class DeviceMemoryBackend {
 public:
  virtual ~DeviceMemoryBackend() = default;
  // nullptr when the device is out of memory; any other failure throws.
  virtual void* malloc(size_t bytes) = 0;
  virtual void free(void* ptr) = 0;
  virtual void* create_event() = 0;
  virtual void destroy_event(void* event) = 0;
  virtual void record_event(void* event, void* stream) = 0;
  // True once all work recorded before the event has finished.
  virtual bool event_done(void* event) = 0;
  virtual void synchronize_device() = 0;
};

struct AllocatorStats {
  size_t bytes_in_use = 0;     // handed out to callers (size-class bytes)
  size_t bytes_requested = 0;  // what callers asked for, of the blocks in use
  size_t bytes_cached = 0;     // held in free lists
  size_t peak_bytes_in_use = 0;
  uint64_t allocations = 0;    // allocate() calls
  uint64_t cache_hits = 0;     // allocate() calls served from a free list
  uint64_t device_mallocs = 0; // backend malloc calls
  uint64_t device_frees = 0;   // backend free calls
  uint64_t oom_retries = 0;    // malloc failures retried after emptying the cache
};

// Size classes: multiples of 512 bytes up to 8 KiB, then four classes per power of two
// (1, 1.25, 1.5, 1.75 x 2^k), so a cached block wastes at most a fifth of its size.
size_t size_class(size_t bytes);

class CachingAllocator {
 public:
  explicit CachingAllocator(DeviceMemoryBackend& backend) : backend_(backend) {}
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` for use on `stream` (nullptr: the legacy default stream).
  // Throws kiln::Error when the device has no memory left even after emptying the cache.
  void* allocate(size_t bytes, void* stream);
  // Returns the block to the cache. Work already queued on its stream may still use it.
  void deallocate(void* ptr);
  // Marks the block as used by another stream too: it is reused only after that stream's work
  // queued up to the free has finished.
  void record_stream(void* ptr, void* stream);
  // Frees every cached block back to the device (synchronizing first).
  void empty_cache();
  AllocatorStats stats() const;
  void reset_peak();

 private:
  struct Block {
    void* ptr = nullptr;
    size_t size = 0;       // size class
    size_t requested = 0;  // what the caller asked for
    void* stream = nullptr;
    std::vector<void*> extra_streams;  // record_stream()
    std::vector<void*> events;         // (stream, event) pairs, flattened: the uses pending at the free
  };
  void* take_cached(size_t size, void* stream);
  void release_events(Block& b);
  void free_cached_locked();

  DeviceMemoryBackend& backend_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> in_use_;
  // size class -> cached blocks; a multimap keeps the lookup one search per allocation.
  std::multimap<size_t, Block> cached_;
  std::vector<void*> spare_events_;
  AllocatorStats stats_;
};

}  // namespace kiln::cuda
