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

void* CachingAllocator::allocate(size_t bytes, void* stream) {
  const size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  void* ptr = take_cached(size, stream);
  if (ptr) {
    ++stats_.cache_hits;
  } else {
    ptr = backend_.malloc(size);
    if (!ptr) {
      // Out of memory: give the cache back to the device and try once more.
      ++stats_.oom_retries;
      free_cached_locked();
      ptr = backend_.malloc(size);
      if (!ptr)
        fail("CUDA out of memory allocating ", bytes, " bytes (", stats_.bytes_in_use, " bytes in use by Kiln)");
    }
    ++stats_.device_mallocs;
    Block b;
    b.ptr = ptr;
    b.size = size;
    b.stream = stream;
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
  stats_.bytes_in_use -= b.size;
  stats_.bytes_requested -= b.requested;
  stats_.bytes_cached += b.size;
  const size_t size = b.size;
  cached_.emplace(size, std::move(b));
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
