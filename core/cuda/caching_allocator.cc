#include "core/cuda/caching_allocator.h"

#include <algorithm>
#include <bit>

#include "core/error.h"

namespace kiln::cuda {

size_t size_class(size_t bytes) {
  constexpr size_t kSmallStep = 512, kSmallMax = 8192;
  if (bytes <= kSmallMax) return std::max<size_t>(kSmallStep, (bytes + kSmallStep - 1) / kSmallStep * kSmallStep);
  // Four classes per power of two: the step is a quarter of the power of two below `bytes`.
  const size_t pow2 = std::bit_floor(bytes);
  const size_t step = pow2 / 4;
  return (bytes + step - 1) / step * step;
}

CachingAllocator::~CachingAllocator() {
  // Process exit: blocks still in use belong to static tensors; leave them to the driver.
  try {
    empty_cache();
    std::lock_guard<std::mutex> lock(mutex_);
    for (void* e : spare_events_) backend_.destroy_event(e);
    spare_events_.clear();
  } catch (...) {
  }
}

void CachingAllocator::release_events(Block& b) {
  for (size_t i = 1; i < b.events.size(); i += 2) spare_events_.push_back(b.events[i]);
  b.events.clear();
}

void* CachingAllocator::take_cached(size_t size, void* stream) {
  auto [first, last] = cached_.equal_range(size);
  auto usable = [&](Block& b) {
    // events holds (stream, event) pairs; the block's own stream orders itself.
    for (size_t i = 0; i + 1 < b.events.size(); i += 2)
      if (b.events[i] != stream && !backend_.event_done(b.events[i + 1])) return false;
    return true;
  };
  // A block last used on this stream first (no cross-stream wait), then any completed one.
  for (int pass = 0; pass < 2; ++pass) {
    for (auto it = first; it != last; ++it) {
      Block& b = it->second;
      if (pass == 0 && b.stream != stream) continue;
      if (!usable(b)) continue;
      Block taken = std::move(b);
      cached_.erase(it);
      release_events(taken);
      taken.stream = stream;
      taken.extra_streams.clear();
      void* ptr = taken.ptr;
      stats_.bytes_cached -= taken.size;
      in_use_.emplace(ptr, std::move(taken));
      return ptr;
    }
  }
  return nullptr;
}

void* CachingAllocator::take_from_pool(Pool& pool, size_t size) {
  auto it = pool.free.find(size);
  if (it == pool.free.end()) return nullptr;
  Block b = std::move(it->second);
  pool.free.erase(it);
  stats_.bytes_in_graph_pools -= b.size;
  void* ptr = b.ptr;
  in_use_.emplace(ptr, std::move(b));
  return ptr;
}

void* CachingAllocator::device_malloc(size_t bytes, size_t size, bool capturing) {
  if (capturing) {
    // Emptying the cache synchronizes the device, which a capture forbids: no retry here.
    void* ptr = nullptr;
    try {
      ptr = backend_.malloc(size);
    } catch (const Error& e) {
      fail("allocating ", bytes, " bytes while a CUDA graph is being captured failed: ", e.what(),
           "; warm up at the captured shapes first or set graphs: false");
    }
    if (!ptr)
      fail("CUDA out of memory allocating ", bytes, " bytes while a CUDA graph is being captured (",
           stats_.bytes_in_use, " bytes in use by Kiln, ", stats_.bytes_cached,
           " cached, which a capture cannot free); set graphs: false or use smaller batches");
    return ptr;
  }
  void* ptr = backend_.malloc(size);
  if (!ptr) {
    // Out of memory: give the cache back to the device and try once more.
    ++stats_.oom_retries;
    free_cached_locked();
    ptr = backend_.malloc(size);
    if (!ptr)
      fail("CUDA out of memory allocating ", bytes, " bytes (", stats_.bytes_in_use, " bytes in use by Kiln)");
  }
  return ptr;
}

void* CachingAllocator::allocate(size_t bytes, void* stream) {
  const size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  const auto capture = capturing_.find(stream);
  const uint64_t pool = capture == capturing_.end() ? 0 : capture->second;
  // A capture takes only its own pool's blocks: the shared cache's events may not be queried
  // from a capturing thread, and its blocks would leave the shared pool for the graph's life.
  void* ptr = pool ? take_from_pool(pools_.at(pool), size) : take_cached(size, stream);
  if (ptr) {
    ++stats_.cache_hits;
  } else {
    ptr = device_malloc(bytes, size, pool != 0 || !capturing_.empty());  // any capture forbids the retry's sync
    ++stats_.device_mallocs;
    Block b;
    b.ptr = ptr;
    b.size = size;
    b.stream = stream;
    b.pool = pool;
    in_use_.emplace(ptr, std::move(b));
  }
  Block& b = in_use_.at(ptr);
  b.requested = bytes;
  stats_.bytes_in_use += size;
  stats_.bytes_requested += bytes;
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return ptr;
}

void CachingAllocator::record_stream(void* ptr, void* stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(ptr);
  KILN_CHECK(it != in_use_.end(), "record_stream on a pointer this allocator did not hand out");
  Block& b = it->second;
  if (stream != b.stream && std::find(b.extra_streams.begin(), b.extra_streams.end(), stream) == b.extra_streams.end())
    b.extra_streams.push_back(stream);
}

void CachingAllocator::deallocate(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(ptr);
  KILN_CHECK(it != in_use_.end(), "deallocate of a pointer this allocator did not hand out");
  Block b = std::move(it->second);
  in_use_.erase(it);
  stats_.bytes_in_use -= b.size;
  stats_.bytes_requested -= b.requested;
  if (b.pool) {
    // Back to its graph's pool, without an event: the capture orders its own reuse, and replays
    // need the address kept.
    Pool& pool = pools_.at(b.pool);
    stats_.bytes_in_graph_pools += b.size;
    if (b.extra_streams.empty()) {
      const size_t size = b.size;
      pool.free.emplace(size, std::move(b));
    } else {
      pool.held.push_back(std::move(b));
    }
    return;
  }
  stats_.bytes_cached += b.size;
  retire(std::move(b));
}

bool CachingAllocator::capturing(const Block& b) const {
  if (capturing_.empty()) return false;
  // The legacy default stream (nullptr: tensors' memory) cannot take an event while any blocking
  // stream captures (cudaErrorStreamCaptureImplicit), so it waits for the end of every capture.
  auto busy = [&](void* s) { return s == nullptr || capturing_.count(s) > 0; };
  if (busy(b.stream)) return true;
  return std::any_of(b.extra_streams.begin(), b.extra_streams.end(), busy);
}

void CachingAllocator::retire(Block b) {
  if (capturing(b)) {
    // An event recorded now would be part of the capture: wait for its end.
    deferred_.push_back(std::move(b));
    return;
  }
  // One event per stream that may still use the block.
  auto mark = [&](void* s) {
    void* e;
    if (!spare_events_.empty()) {
      e = spare_events_.back();
      spare_events_.pop_back();
    } else {
      e = backend_.create_event();
    }
    backend_.record_event(e, s);
    b.events.push_back(s);
    b.events.push_back(e);
  };
  mark(b.stream);
  for (void* s : b.extra_streams) mark(s);
  const size_t size = b.size;
  cached_.emplace(size, std::move(b));
}

uint64_t CachingAllocator::begin_capture(void* stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  KILN_CHECK(!capturing_.count(stream), "begin_capture on a stream that is already capturing");
  const uint64_t id = next_pool_++;
  pools_[id];
  capturing_[stream] = id;
  ++stats_.graph_pools;
  return id;
}

uint64_t CachingAllocator::end_capture(void* stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = capturing_.find(stream);
  KILN_CHECK(it != capturing_.end(), "end_capture on a stream that is not capturing");
  const uint64_t id = it->second;
  capturing_.erase(it);
  // Shared blocks freed during the capture: their events may be recorded now.
  std::vector<Block> deferred = std::move(deferred_);
  deferred_.clear();
  for (Block& b : deferred) retire(std::move(b));
  return id;
}

void CachingAllocator::release_pool(uint64_t id, const std::vector<void*>& streams) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto pit = pools_.find(id);
  if (pit == pools_.end()) return;
  for (auto it = capturing_.begin(); it != capturing_.end();) it = it->second == id ? capturing_.erase(it) : std::next(it);
  // The graph's launches may still run on `streams`: every block waits for them before another
  // stream takes it.
  auto shared = [&](Block& b) {
    b.pool = 0;
    for (void* s : streams)
      if (s != b.stream && std::find(b.extra_streams.begin(), b.extra_streams.end(), s) == b.extra_streams.end())
        b.extra_streams.push_back(s);
  };
  for (auto& [ptr, b] : in_use_)
    if (b.pool == id) shared(b);  // still held by a caller: shared when freed
  std::vector<Block> blocks;
  for (auto& [size, b] : pit->second.free) blocks.push_back(std::move(b));
  for (Block& b : pit->second.held) blocks.push_back(std::move(b));
  pools_.erase(pit);
  --stats_.graph_pools;
  for (Block& b : blocks) {
    shared(b);
    stats_.bytes_in_graph_pools -= b.size;
    stats_.bytes_cached += b.size;
    retire(std::move(b));
  }
}

void CachingAllocator::free_cached_locked() {
  if (cached_.empty()) return;
  backend_.synchronize_device();
  for (auto& [size, b] : cached_) {
    release_events(b);
    backend_.free(b.ptr);
    ++stats_.device_frees;
    stats_.bytes_cached -= size;
  }
  cached_.clear();
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
}

}  // namespace kiln::cuda
