// The sim device runtime (core/sim/): memory the host cannot read, poison, bounds and liveness
// checks. CTest label: sim.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "core/sim/sim_memory.h"
#include "core/tensor.h"

namespace kiln::sim {
namespace {

template <typename E, typename F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

uint16_t word_at(const void* host, size_t byte) {
  uint16_t w;
  std::memcpy(&w, static_cast<const char*>(host) + byte, sizeof w);
  return w;
}

// ---- device plumbing ----

TEST(SimDevice, KindNamesAndAllocator) {
  EXPECT_TRUE(Device::sim().is_sim());
  EXPECT_FALSE(Device::sim().is_cpu());
  EXPECT_FALSE(Device::sim().is_cuda());
  EXPECT_EQ(Device::sim().to_string(), "sim");
  EXPECT_EQ(Device::sim(2).to_string(), "sim:2");
  EXPECT_EQ(Device::cpu().to_string(), "cpu");
  EXPECT_EQ(Device::cuda(1).to_string(), "cuda:1");
  EXPECT_FALSE(Device::sim() == Device::cpu());
  EXPECT_TRUE(allocator_for(Device::sim()).device() == Device::sim());
  EXPECT_TRUE(allocator_for(Device::sim(3)).device() == Device::sim(3));
  expect_error<Error>([] { allocator_for(Device::sim(kSimDeviceCount)); }, "sim:8 does not exist");
  expect_error<Error>([] { allocator_for(Device::sim(-1)); }, "sim:-1 does not exist");

  Tensor t = Tensor::empty(Shape{3, 5}, DType::f32, Device::sim());
  EXPECT_TRUE(t.device() == Device::sim());
  EXPECT_TRUE(is_sim_pointer(t.raw()));
  EXPECT_TRUE(std::isnan(sim_memory().untag_array(t.data<float>(), 15)[14]));
}

// ---- memory ----

TEST(SimMemoryDeathTest, HostReadOfDeviceMemoryCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  void* p = sim_memory().allocate(64);
  ASSERT_DEATH(
      {
        volatile float v = *static_cast<volatile float*>(p);
        (void)v;
      },
      "");
  sim_memory().free(p);
}

TEST(SimMemoryDeathTest, HostWriteThroughATensorCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Tensor t = Tensor::empty(Shape{16}, DType::f32, Device::sim());
  ASSERT_DEATH(t.fill_zero(), "");  // a host memset: on sim it needs memset_async
}

TEST(SimMemory, PoisonOnAllocationIsNaNInEveryFloatType) {
  SimMemory memory;
  const size_t bytes = 37 * sizeof(double) + 3;  // odd size
  void* p = memory.allocate(bytes);
  const void* host = memory.untag(p, bytes);
  for (size_t i = 0; i + 1 < bytes; i += 2) ASSERT_EQ(word_at(host, i), kAllocPoison) << "byte " << i;
  for (size_t i = 0; i < 37; ++i) EXPECT_TRUE(std::isnan(static_cast<const double*>(host)[i]));
  for (size_t i = 0; i < 74; ++i) EXPECT_TRUE(std::isnan(static_cast<const float*>(host)[i]));
  EXPECT_LT(static_cast<const int32_t*>(host)[0], 0);  // an index read from it is out of range
  memory.free(p);
}

TEST(SimMemory, FreedMemoryIsPoisonedDifferently) {
  SimMemory memory;
  float* p = static_cast<float*>(memory.allocate(10 * sizeof(float)));
  float* host = memory.untag_array(p, 10);  // as a kernel that untagged before the free holds it
  for (int i = 0; i < 10; ++i) host[i] = static_cast<float>(i);
  memory.free(p);
  // Quarantined: still mapped, so a late reader sees this poison, not the old values.
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(std::isnan(host[i]));
    EXPECT_EQ(word_at(host, i * sizeof(float)), kFreePoison);
  }
  EXPECT_NE(kFreePoison, kAllocPoison);
  EXPECT_GT(memory.stats().quarantined_bytes, 0u);
}

TEST(SimMemory, QuarantineIsBounded) {
  SimMemory memory(/*quarantine_bytes=*/1024);
  for (int i = 0; i < 5; ++i) memory.free(memory.allocate(1000));
  const SimMemoryStats s = memory.stats();
  EXPECT_LE(s.quarantined_bytes, 1024u);
  EXPECT_EQ(s.frees, 5u);
  // Released blocks are still remembered as freed.
  void* p = memory.allocate(8);
  memory.free(p);
  for (int i = 0; i < 5; ++i) memory.free(memory.allocate(1000));
  expect_error<InternalError>([&] { memory.untag(p, 8); }, "use after free");
}

TEST(SimMemory, UntagChecksBoundsAndLiveness) {
  SimMemory memory;
  char* p = static_cast<char*>(memory.allocate(100));
  char* host = static_cast<char*>(memory.untag(p, 100));
  EXPECT_EQ(memory.untag(p + 10, 90), host + 10);
  EXPECT_EQ(memory.untag(p + 100, 0), host + 100);  // the end, empty
  EXPECT_EQ(memory.untag(nullptr, 0), nullptr);      // a zero-length copy
  expect_error<InternalError>([&] { memory.untag(p, 101); }, "run 1 bytes past the end of the 100-byte allocation");
  expect_error<InternalError>([&] { memory.untag(p + 98, 4); }, "past the end");
  expect_error<InternalError>([&] { memory.untag(p + (1 << 20), 4); }, "not inside any sim allocation");
  std::vector<char> host_vector(16);
  expect_error<InternalError>([&] { memory.untag(host_vector.data(), 16); }, "not a sim device pointer");
  expect_error<InternalError>([&] { memory.untag(nullptr, 4); }, "not a sim device pointer");
  memory.free(p);
  expect_error<InternalError>([&] { memory.untag(p + 4, 4); }, "freed (use after free)");
}

TEST(SimMemory, FreeErrorsAndNoAddressReuse) {
  SimMemory memory;
  char* p = static_cast<char*>(memory.allocate(64));
  expect_error<InternalError>([&] { memory.free(p + 8); }, "not its start");
  int on_host = 0;
  expect_error<InternalError>([&] { memory.free(&on_host); }, "not a sim device pointer");
  memory.free(p);
  expect_error<InternalError>([&] { memory.free(p); }, "double free");
  memory.free(nullptr);
  // A new allocation of the same size never gets the dangling pointer's address.
  void* q = memory.allocate(64);
  EXPECT_NE(q, static_cast<void*>(p));
  expect_error<InternalError>([&] { memory.untag(p, 64); }, "use after free");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % kSimAlignment, 0u);
  memory.free(q);
}

TEST(SimMemory, StatsTrackLiveAndPeakBytes) {
  SimMemory memory;
  void* a = memory.allocate(100);
  void* b = memory.allocate(200);
  SimMemoryStats s = memory.stats();
  EXPECT_EQ(s.live_bytes, 300u);
  EXPECT_EQ(s.peak_live_bytes, 300u);
  EXPECT_EQ(s.live_allocations, 2u);
  memory.free(b);
  s = memory.stats();
  EXPECT_EQ(s.live_bytes, 100u);
  EXPECT_EQ(s.peak_live_bytes, 300u);
  memory.reset_peak();
  EXPECT_EQ(memory.stats().peak_live_bytes, 100u);
  memory.free(a);
  s = memory.stats();
  EXPECT_EQ(s.live_bytes, 0u);
  EXPECT_EQ(s.live_allocations, 0u);
  EXPECT_EQ(s.allocations, 2u);
  EXPECT_EQ(s.frees, 2u);
}

TEST(SimMemory, ConcurrentAllocateUntagFree) {
  SimMemory memory;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&memory, t] {
      for (int i = 0; i < 500; ++i) {
        const size_t bytes = 8 + (i * 7 + t) % 300;
        char* p = static_cast<char*>(memory.allocate(bytes));
        std::memset(memory.untag(p, bytes), t, bytes);
        EXPECT_EQ(*static_cast<char*>(memory.untag(p + bytes - 1, 1)), t);
        memory.free(p);
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(memory.stats().live_bytes, 0u);
  EXPECT_EQ(memory.stats().frees, 2000u);
}

}  // namespace
}  // namespace kiln::sim
