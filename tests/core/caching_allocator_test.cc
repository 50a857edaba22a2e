// The caching device allocator's policy (core/cuda/caching_allocator.h), against a fake device:
// plain C++, so it runs in every build.
#include <gtest/gtest.h>

#include "core/cuda/caching_allocator.h"
#include "core/error.h"
#include "tests/core/fake_device_memory.h"

namespace kiln {
namespace {

using cuda::CachingAllocator;
using test::FakeDevice;
using test::kStreamA;
using test::kStreamB;

TEST(CudaSizeClass, RoundsUpWithBoundedWaste) {
  EXPECT_EQ(cuda::size_class(0), 512u);
  EXPECT_EQ(cuda::size_class(1), 512u);
  EXPECT_EQ(cuda::size_class(513), 1024u);
  EXPECT_EQ(cuda::size_class(8192), 8192u);
  for (size_t b : {size_t{8193}, size_t{10000}, size_t{1} << 20, (size_t{1} << 20) + 1, size_t{123456789}}) {
    const size_t c = cuda::size_class(b);
    EXPECT_GE(c, b);
    EXPECT_LE(static_cast<double>(c - b), 0.25 * static_cast<double>(b)) << b;
    EXPECT_EQ(cuda::size_class(c), c) << "a class is its own class";
  }
}

TEST(CudaCachingAllocator, SteadyStateMakesNoDeviceMallocs) {
  FakeDevice dev;
  CachingAllocator alloc(dev);
  for (int step = 0; step < 10; ++step) {
    void* a = alloc.allocate(1000, kStreamA);
    void* b = alloc.allocate(1 << 20, kStreamA);
    void* c = alloc.allocate(333333, kStreamA);
    alloc.deallocate(b);
    alloc.deallocate(a);
    alloc.deallocate(c);
  }
  const auto st = alloc.stats();
  EXPECT_EQ(dev.mallocs, 3);
  EXPECT_EQ(st.device_mallocs, 3u);
  EXPECT_EQ(st.allocations, 30u);
  EXPECT_EQ(st.cache_hits, 27u);
  EXPECT_EQ(st.bytes_in_use, 0u);
  EXPECT_EQ(st.bytes_cached, cuda::size_class(1000) + cuda::size_class(1 << 20) + cuda::size_class(333333));
  EXPECT_EQ(st.peak_bytes_in_use, st.bytes_cached);
}

TEST(CudaCachingAllocator, OtherStreamWaitsForTheFreeingStreamsEvent) {
  FakeDevice dev;
  CachingAllocator alloc(dev);
  void* a = alloc.allocate(4096, kStreamA);
  alloc.deallocate(a);
  // Stream B may not take the block while A's work on it may still run.
  void* b = alloc.allocate(4096, kStreamB);
  EXPECT_NE(a, b);
  EXPECT_EQ(dev.mallocs, 2);
  alloc.deallocate(b);
  // The same stream reuses at once.
  EXPECT_EQ(alloc.allocate(4096, kStreamA), a);
  alloc.deallocate(a);
  dev.complete_all();
  // Once A's event completed, B may take A's block (or its own).
  void* c = alloc.allocate(4096, kStreamB);
  EXPECT_TRUE(c == a || c == b);
  EXPECT_EQ(dev.mallocs, 2);
  alloc.deallocate(c);
}

TEST(CudaCachingAllocator, RecordStreamDelaysReuseOnTheOwningStream) {
  FakeDevice dev;
  CachingAllocator alloc(dev);
  void* a = alloc.allocate(4096, kStreamA);
  alloc.record_stream(a, kStreamB);
  alloc.deallocate(a);
  // Stream B's use is still pending, so even stream A must not reuse the block.
  void* again = alloc.allocate(4096, kStreamA);
  EXPECT_NE(again, a);
  alloc.deallocate(again);
  dev.complete_all();
  void* later = alloc.allocate(4096, kStreamA);
  EXPECT_TRUE(later == a || later == again);
  alloc.deallocate(later);
}

TEST(CudaCachingAllocator, OutOfMemoryEmptiesTheCacheAndRetries) {
  FakeDevice dev;
  dev.capacity = 3 << 20;
  CachingAllocator alloc(dev);
  void* a = alloc.allocate(2 << 20, kStreamA);
  alloc.deallocate(a);
  void* b = alloc.allocate(3 << 20, kStreamA);  // fits only after the cached 2 MiB is freed
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(alloc.stats().oom_retries, 1u);
  EXPECT_GE(dev.syncs, 1);
  EXPECT_THROW(alloc.allocate(1 << 20, kStreamA), Error);
  alloc.deallocate(b);
}

TEST(CudaCachingAllocator, RejectsForeignPointersAndEmptiesCache) {
  FakeDevice dev;
  CachingAllocator alloc(dev);
  int x = 0;
  EXPECT_THROW(alloc.deallocate(&x), InternalError);
  void* a = alloc.allocate(100, kStreamA);
  alloc.deallocate(a);
  alloc.empty_cache();
  EXPECT_EQ(alloc.stats().bytes_cached, 0u);
  EXPECT_EQ(dev.frees, 1);
  EXPECT_TRUE(dev.blocks.empty());
}

}  // namespace
}  // namespace kiln
