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
//
// Graph captures: while a stream captures a graph, its allocations come from a pool private to
// that graph, kept until the graph is destroyed (as PyTorch's graph memory pools), so a replay's
// scratch addresses are never handed to anyone else (begin_capture below).
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
  size_t bytes_in_graph_pools = 0;  // free blocks that graph-private pools keep for their graphs
  uint64_t graph_pools = 0;         // pools alive (captures under way and graphs not yet destroyed)
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

  // Graph-private pools. From begin_capture(stream) to end_capture(stream), allocations on
  // `stream` come from a new pool: a block freed during the capture goes back to that pool only
  // (with no event: nothing may be recorded on a capturing stream) and a later allocation of the
  // same capture may reuse it, in capture order; no block of the pool goes to anyone else until
  // release_pool, so the graph's replays keep their addresses. A block the pool lacks is a fresh
  // backend malloc (the CUDA backend allows it in relaxed capture mode; the cache cannot be
  // emptied during a capture, so out of memory there is an error). A block of the shared cache
  // freed while a stream it was used on captures is cached when that capture ends. Returns the
  // pool's id.
  uint64_t begin_capture(void* stream);
  // Ends the stream's capture (allocations on it are shared again); returns the pool's id.
  uint64_t end_capture(void* stream);
  // The graph is destroyed: its pool's blocks join the shared cache, reusable on another stream
  // once the work queued so far on `streams` (where the graph was launched) has finished.
  void release_pool(uint64_t pool, const std::vector<void*>& streams);

 private:
  struct Block {
    void* ptr = nullptr;
    size_t size = 0;       // size class
    size_t requested = 0;  // what the caller asked for
    void* stream = nullptr;
    std::vector<void*> extra_streams;  // record_stream()
    std::vector<void*> events;         // (stream, event) pairs, flattened: the uses pending at the free
    uint64_t pool = 0;                 // the graph-private pool it belongs to (0: shared)
  };
  struct Pool {
    std::multimap<size_t, Block> free;  // freed during (or after) the capture, for the capture
    std::vector<Block> held;            // freed but used on other streams too: never reused
  };
  void* take_cached(size_t size, void* stream);
  void* take_from_pool(Pool& pool, size_t size);
  void* device_malloc(size_t bytes, size_t size, bool capturing);
  void release_events(Block& b);
  void free_cached_locked();
  bool capturing(const Block& b) const;
  // Returns a freed shared block to the cache with an event per stream that used it, or holds it
  // until no such stream captures.
  void retire(Block b);

  DeviceMemoryBackend& backend_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> in_use_;
  // size class -> cached blocks; a multimap keeps the lookup one search per allocation.
  std::multimap<size_t, Block> cached_;
  std::vector<void*> spare_events_;
  std::unordered_map<void*, uint64_t> capturing_;  // capturing stream -> its pool
  std::unordered_map<uint64_t, Pool> pools_;
  uint64_t next_pool_ = 1;
  std::vector<Block> deferred_;  // retired while one of their streams captured
  AllocatorStats stats_;
};

}  // namespace kiln::cuda
