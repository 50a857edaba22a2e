// The caching allocator's graph-private pools (core/cuda/caching_allocator.h, begin_capture):
// scratch allocated while a stream captures a graph keeps its address for the graph's replays.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "core/cuda/caching_allocator.h"
#include "core/error.h"
#include "tests/core/fake_device_memory.h"

namespace kiln {
namespace {

using cuda::CachingAllocator;
using test::FakeDevice;
using test::kStreamA;
using test::kStreamB;

TEST(CudaGraphPool, ABlockFreedDuringCaptureIsNotReusedOutsideIt) {
  FakeDevice dev;
  dev.auto_complete = true;  // events never hold a block back here: only the pool does
  CachingAllocator alloc(dev);
  const uint64_t pool = alloc.begin_capture(kStreamA);
  void* scratch = alloc.allocate(4096, kStreamA);
  alloc.deallocate(scratch);  // a kernel's scratch, freed inside the captured step
  // Later in the same capture the pool hands it out again (capture order keeps that safe).
  void* again = alloc.allocate(4096, kStreamA);
  EXPECT_EQ(again, scratch);
  alloc.deallocate(again);
  // Another stream meanwhile never gets it.
  void* other = alloc.allocate(4096, kStreamB);
  EXPECT_NE(other, scratch);
  EXPECT_EQ(alloc.end_capture(kStreamA), pool);
  // After the capture neither the capturing stream nor any other gets it, nor does emptying the
  // cache free it: the graph's replays still write there.
  for (void* s : {kStreamA, kStreamB, static_cast<void*>(nullptr)}) {
    void* p = alloc.allocate(4096, s);
    EXPECT_NE(p, scratch);
    alloc.deallocate(p);
  }
  alloc.deallocate(other);
  alloc.empty_cache();
  EXPECT_TRUE(dev.blocks.count(scratch));
  const auto st = alloc.stats();
  EXPECT_EQ(st.bytes_in_graph_pools, cuda::size_class(4096));
  EXPECT_EQ(st.graph_pools, 1u);
  alloc.release_pool(pool, {kStreamA});
}

TEST(CudaGraphPool, NoEventIsRecordedOnTheCapturingStream) {
  FakeDevice dev;
  CachingAllocator alloc(dev);
  void* before = alloc.allocate(1000, kStreamA);  // a shared block, freed during the capture
  const uint64_t pool = alloc.begin_capture(kStreamA);
  void* scratch = alloc.allocate(1000, kStreamA);
  alloc.deallocate(scratch);
  alloc.deallocate(before);
  EXPECT_TRUE(dev.recorded_on.empty()) << "an event recorded on a capturing stream joins the capture";
  // The shared block is cached once the capture has ended, with its event recorded then.
  alloc.end_capture(kStreamA);
  EXPECT_EQ(dev.recorded_on, std::vector<void*>{kStreamA});
  EXPECT_EQ(alloc.allocate(1000, kStreamA), before);
  alloc.deallocate(before);
  alloc.release_pool(pool, {kStreamA});
}

// Tensors' memory lives on the legacy default stream (nullptr), which CUDA lets no event touch
// while any blocking stream captures: its frees wait for the end of every capture.
TEST(CudaGraphPool, TheLegacyStreamRecordsNoEventWhileAnyStreamCaptures) {
  FakeDevice dev;
  CachingAllocator alloc(dev);
  void* tensor = alloc.allocate(2048, nullptr);
  const uint64_t a = alloc.begin_capture(kStreamA);
  const uint64_t b = alloc.begin_capture(kStreamB);
  alloc.deallocate(tensor);
  EXPECT_TRUE(dev.recorded_on.empty());
  alloc.end_capture(kStreamA);
  EXPECT_TRUE(dev.recorded_on.empty()) << "stream B still captures";
  alloc.end_capture(kStreamB);
  EXPECT_EQ(dev.recorded_on, std::vector<void*>{nullptr});
  alloc.release_pool(a, {kStreamA});
  alloc.release_pool(b, {kStreamB});
}

TEST(CudaGraphPool, ReplaysKeepTheirAddressesWhileOtherWorkAllocates) {
  FakeDevice dev;
  dev.auto_complete = true;
  CachingAllocator alloc(dev);
  // A captured step: three scratch blocks, each freed before the next is taken.
  const uint64_t pool = alloc.begin_capture(kStreamA);
  std::vector<void*> captured;
  for (size_t bytes : {size_t{2048}, size_t{1} << 20, size_t{2048}}) {
    void* p = alloc.allocate(bytes, kStreamA);
    captured.push_back(p);
    alloc.deallocate(p);
  }
  alloc.end_capture(kStreamA);
  EXPECT_EQ(captured[0], captured[2]) << "the capture reuses its own freed block";
  // Eager steps and another graph's capture between the replays: none of them gets an address
  // the first graph's replays use.
  for (int step = 0; step < 5; ++step) {
    std::vector<void*> eager;
    for (size_t bytes : {size_t{2048}, size_t{1} << 20}) eager.push_back(alloc.allocate(bytes, kStreamA));
    for (void* p : eager) {
      EXPECT_EQ(std::count(captured.begin(), captured.end(), p), 0) << "step " << step;
      alloc.deallocate(p);
    }
  }
  const uint64_t second = alloc.begin_capture(kStreamB);
  void* p = alloc.allocate(2048, kStreamB);
  EXPECT_EQ(std::count(captured.begin(), captured.end(), p), 0);
  alloc.deallocate(p);
  alloc.end_capture(kStreamB);
  EXPECT_NE(second, pool);
  for (void* c : captured) EXPECT_TRUE(dev.blocks.count(c));
  alloc.release_pool(second, {kStreamB});
  alloc.release_pool(pool, {kStreamA});
}

TEST(CudaGraphPool, DestroyingTheGraphReleasesThePool) {
  FakeDevice dev;
  CachingAllocator alloc(dev);
  const uint64_t pool = alloc.begin_capture(kStreamA);
  void* scratch = alloc.allocate(4096, kStreamA);
  alloc.deallocate(scratch);
  alloc.end_capture(kStreamA);
  // The graph was launched on stream B; destroying it hands the pool to the shared cache, behind
  // an event on B: its last launch may still run.
  alloc.release_pool(pool, {kStreamB});
  auto st = alloc.stats();
  EXPECT_EQ(st.graph_pools, 0u);
  EXPECT_EQ(st.bytes_in_graph_pools, 0u);
  EXPECT_EQ(st.bytes_cached, cuda::size_class(4096));
  void* early = alloc.allocate(4096, kStreamA);
  EXPECT_NE(early, scratch) << "taken while the graph's last launch on B may still run";
  alloc.deallocate(early);
  dev.complete_all();
  void* later = alloc.allocate(4096, kStreamB);
  EXPECT_TRUE(later == scratch || later == early);
  alloc.deallocate(later);
  alloc.empty_cache();
  EXPECT_TRUE(dev.blocks.empty()) << "the pool's blocks are the cache's now, and freed with it";
}

TEST(CudaGraphPool, ABlockStillHeldWhenTheGraphGoesIsSharedWhenFreed) {
  FakeDevice dev;
  dev.auto_complete = true;
  CachingAllocator alloc(dev);
  const uint64_t pool = alloc.begin_capture(kStreamA);
  void* kept = alloc.allocate(4096, kStreamA);
  alloc.end_capture(kStreamA);
  alloc.release_pool(pool, {kStreamA});
  alloc.deallocate(kept);
  EXPECT_EQ(alloc.stats().bytes_cached, cuda::size_class(4096));
  EXPECT_EQ(alloc.allocate(4096, kStreamB), kept);
  alloc.deallocate(kept);
}

TEST(CudaGraphPool, OutOfMemoryDuringACaptureSaysWhatToDo) {
  FakeDevice dev;
  dev.capacity = 3 << 20;
  CachingAllocator alloc(dev);
  void* cached = alloc.allocate(2 << 20, kStreamA);
  alloc.deallocate(cached);
  const uint64_t pool = alloc.begin_capture(kStreamA);
  // Outside a capture this would empty the cache (a device synchronize) and retry; a capture
  // cannot synchronize.
  try {
    alloc.allocate(2 << 20, kStreamA);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("while a CUDA graph is being captured"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("graphs: false"), std::string::npos) << e.what();
  }
  EXPECT_EQ(dev.syncs, 0);
  alloc.end_capture(kStreamA);
  alloc.release_pool(pool, {});
}

}  // namespace
}  // namespace kiln
