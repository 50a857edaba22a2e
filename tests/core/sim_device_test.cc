// The sim device runtime (core/sim/): memory the host cannot read, poison, bounds and liveness
// checks, stream order, events, copies, errors and the stream-ordered free. Every ordering test is
// deterministic: a Gate holds a stream "busy" instead of relying on timing. CTest label: sim.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <latch>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "core/sim/sim_copy.h"
#include "core/sim/sim_event.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"
#include "core/tensor.h"

namespace kiln::sim {
namespace {

// Holds a stream inside one task until open(): "the GPU is still busy", without timing.
class Gate {
 public:
  void block(SimStream& stream) {
    stream.enqueue([this] {
      entered_.count_down();
      opened_.wait();
    });
  }
  // Returns once the stream sits in the gate: everything queued before it has run.
  void wait_entered() { entered_.wait(); }
  void open() {
    if (!open_) opened_.count_down();
    open_ = true;
  }

 private:
  std::latch entered_{1};
  std::latch opened_{1};
  bool open_ = false;
};

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

std::vector<float> iota_floats(size_t n, float start) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

// ---- device and stream plumbing ----

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
  expect_error<Error>([] { SimStream bad(-1); }, "sim:-1 does not exist");

  Tensor t = Tensor::empty(Shape{3, 5}, DType::f32, Device::sim());
  EXPECT_TRUE(t.device() == Device::sim());
  EXPECT_TRUE(is_sim_pointer(t.raw()));
  EXPECT_TRUE(std::isnan(sim_memory().untag_array(t.data<float>(), 15)[14]));
}

TEST(SimDevice, StreamViewSynchronizes) {
  Gate gate;  // outlives the stream
  SimStream stream;
  const Stream view = stream.view();
  EXPECT_TRUE(view.device() == Device::sim());
  EXPECT_EQ(&SimStream::from(view), &stream);
  bool ran = false;
  gate.block(stream);
  stream.enqueue([&] { ran = true; });
  EXPECT_FALSE(stream.idle());
  gate.open();
  view.synchronize();
  EXPECT_TRUE(ran);
  EXPECT_TRUE(stream.idle());

  // The null handle is the device's default stream.
  EXPECT_EQ(&SimStream::from(Stream::sim(nullptr)), &SimStream::default_stream(0));
  EXPECT_EQ(&SimStream::from(Stream::sim(nullptr, 2)), &SimStream::default_stream(2));
  bool default_ran = false;
  SimStream::default_stream(0).enqueue([&] { default_ran = true; });
  Stream::sim(nullptr).synchronize();
  EXPECT_TRUE(default_ran);
  expect_error<InternalError>([] { SimStream::from(Stream::cpu()); }, "a sim stream was expected");
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

// ---- streams ----

TEST(SimStream, RunsTasksInQueueOrder) {
  Gate gate;  // outlives the stream
  SimStream stream;
  std::vector<int> order;  // touched only by the stream's worker until synchronize()
  gate.block(stream);
  for (int i = 0; i < 1000; ++i) stream.enqueue([&order, i] { order.push_back(i); });
  EXPECT_TRUE(order.empty());  // enqueue returned before anything ran
  gate.open();
  stream.synchronize();
  std::vector<int> expected(1000);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(order, expected);
}

TEST(SimStream, TaskErrorsSurfaceAtTheNextSynchronize) {
  SimStream stream;
  bool skipped_work_ran = false, control_ran = false, later_ran = false;
  stream.enqueue([] { fail("boom in a kernel"); });
  stream.enqueue([&] { skipped_work_ran = true; });      // behind a failure: skipped
  stream.enqueue_control([&] { control_ran = true; });  // bookkeeping: still runs
  expect_error<Error>([&] { stream.synchronize(); }, "boom in a kernel");
  EXPECT_FALSE(skipped_work_ran);
  EXPECT_TRUE(control_ran);
  // Reported once, then the stream runs again.
  stream.enqueue([&] { later_ran = true; });
  stream.synchronize();
  EXPECT_TRUE(later_ran);
  // A task that synchronizes its own stream would wait for itself: an error instead.
  stream.enqueue([&] { stream.synchronize(); });
  expect_error<InternalError>([&] { stream.synchronize(); }, "synchronized its own stream");
}

TEST(SimStream, MemoryFreedOnTheHostWhileQueuedFailsTheTask) {
  Gate gate;  // outlives the stream
  SimStream stream;
  float* d = static_cast<float*>(sim_memory().allocate(4 * sizeof(float)));
  std::vector<float> out(4, 0.0f);
  gate.block(stream);
  copy_device_to_host_async(stream, out.data(), d, 4 * sizeof(float));
  sim_memory().free(d);  // the missing synchronize before a free
  gate.open();
  expect_error<InternalError>([&] { stream.synchronize(); }, "use after free");
}

TEST(SimStream, JitterSettingParses) {
  EXPECT_FALSE(parse_sim_jitter("").has_value());
  const std::optional<SimJitter> seed_only = parse_sim_jitter("17");
  ASSERT_TRUE(seed_only.has_value());
  EXPECT_EQ(seed_only->seed, 17u);
  EXPECT_EQ(seed_only->max_delay_us, SimJitter{}.max_delay_us);
  const std::optional<SimJitter> both = parse_sim_jitter("5:40");
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->seed, 5u);
  EXPECT_EQ(both->max_delay_us, 40);
  for (const char* bad : {"x", "5:", "-3", "5:-1", " 5", "5:40:1", "99999999999999999999999"})
    expect_error<Error>([&] { parse_sim_jitter(bad); }, "KILN_SIM_JITTER");
}

// ---- events ----

// Producer: blocked, then writes `values` into d. Consumer: reads d back to the host.
struct ProducerConsumer {
  static constexpr size_t kCount = 33;
  Gate gate;  // declared before the streams, so it outlives their workers
  std::vector<float> values = iota_floats(kCount, 1.0f);
  std::vector<float> out = std::vector<float>(kCount, -1.0f);
  float* d = static_cast<float*>(sim_memory().allocate(kCount * sizeof(float)));
  SimStream producer, consumer;
  ~ProducerConsumer() {
    producer.synchronize();
    sim_memory().free(d);
  }
  void produce() {
    gate.block(producer);
    copy_host_to_device_async(producer, d, values.data(), kCount * sizeof(float));
  }
  void consume() { copy_device_to_host_async(consumer, out.data(), d, kCount * sizeof(float)); }
};

TEST(SimEvent, OrdersWorkAcrossStreams) {
  ProducerConsumer pc;
  SimEvent written;
  pc.produce();
  written.record(pc.producer);
  wait_on_event(pc.consumer, written);
  pc.consume();
  EXPECT_FALSE(written.query());
  EXPECT_FALSE(pc.consumer.idle());  // waiting for the producer
  pc.gate.open();
  pc.consumer.synchronize();
  EXPECT_TRUE(written.query());
  EXPECT_EQ(pc.out, pc.values);
}

TEST(SimEvent, WithoutTheEventTheConsumerReadsPoison) {
  // The race a missing wait_on_event causes, made deterministic: the producer is held busy, so the
  // consumer always wins it and reads memory nothing has written yet.
  ProducerConsumer pc;
  pc.produce();
  pc.consume();
  pc.consumer.synchronize();
  for (float v : pc.out) EXPECT_TRUE(std::isnan(v));  // allocation poison, not the values
  pc.gate.open();
  pc.producer.synchronize();
}

TEST(SimEvent, HostSynchronizeAndQuery) {
  Gate gate;  // outlives the stream
  SimStream stream;
  SimEvent event;
  EXPECT_TRUE(event.query());  // never recorded
  event.synchronize();
  gate.block(stream);
  event.record(stream);
  EXPECT_FALSE(event.query());
  gate.open();
  event.synchronize();
  EXPECT_TRUE(event.query());
  stream.synchronize();
}

TEST(SimEvent, ReRecordingDoesNotMoveWaitsAlreadyQueued) {
  Gate gate;  // outlives the stream
  SimStream first, second, waiter;
  SimEvent event;
  gate.block(first);
  event.record(first);
  wait_on_event(waiter, event);  // waits for `first`'s mark
  bool waiter_ran = false;
  waiter.enqueue([&] { waiter_ran = true; });
  event.record(second);  // the new mark is reached at once
  second.synchronize();
  event.synchronize();
  EXPECT_TRUE(event.query());
  EXPECT_FALSE(waiter.idle());  // still on the old mark
  gate.open();
  waiter.synchronize();
  EXPECT_TRUE(waiter_ran);
  first.synchronize();
}

TEST(SimEvent, KernelChainUnderJitterStaysOrdered) {
  set_sim_jitter(SimJitter{/*seed=*/1234, /*max_delay_us=*/100});
  SimStream a, b, c;
  set_sim_jitter(std::nullopt);
  constexpr size_t n = 257;
  float* x = static_cast<float*>(sim_memory().allocate(n * sizeof(float)));
  float* y = static_cast<float*>(sim_memory().allocate(n * sizeof(float)));
  SimEvent x_ready, y_ready, y_read;
  for (int round = 0; round < 20; ++round) {
    const std::vector<float> input = iota_floats(n, static_cast<float>(round));
    std::vector<float> out(n, -1.0f);
    wait_on_event(a, y_read);  // x may be rewritten only after the last round read y
    copy_host_to_device_async(a, x, input.data(), n * sizeof(float));
    x_ready.record(a);
    wait_on_event(b, x_ready);
    b.enqueue([x, y] {  // a "kernel": the CPU body on untagged pointers
      const float* xs = sim_memory().untag_array(static_cast<const float*>(x), n);
      float* ys = sim_memory().untag_array(y, n);
      for (size_t i = 0; i < n; ++i) ys[i] = 2.0f * xs[i] + 1.0f;
    });
    y_ready.record(b);
    wait_on_event(c, y_ready);
    copy_device_to_host_async(c, out.data(), y, n * sizeof(float));
    y_read.record(c);
    c.synchronize();
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], 2.0f * input[i] + 1.0f) << "round " << round << ", " << i;
  }
  a.synchronize();
  b.synchronize();
  sim_memory().free(x);
  sim_memory().free(y);
}

// ---- copies ----

TEST(SimCopy, DeviceToHostHoldsNothingBeforeSynchronize) {
  Gate gate;  // outlives the stream
  SimStream stream;
  const std::vector<float> values = iota_floats(19, 0.5f);
  std::vector<float> out(19, -1.0f);
  float* d = static_cast<float*>(sim_memory().allocate(19 * sizeof(float)));
  copy_host_to_device_async(stream, d, values.data(), 19 * sizeof(float));
  gate.block(stream);
  copy_device_to_host_async(stream, out.data(), d, 19 * sizeof(float));
  gate.wait_entered();
  EXPECT_EQ(out, std::vector<float>(19, -1.0f));  // read too early: the old bytes
  gate.open();
  stream.synchronize();
  EXPECT_EQ(out, values);
  sim_memory().free(d);
}

TEST(SimCopy, HostSourceIsReadWhenTheStreamGetsThere) {
  Gate gate;  // outlives the stream
  SimStream stream;
  std::vector<float> source = iota_floats(8, 0.0f);
  std::vector<float> out(8, -1.0f);
  float* d = static_cast<float*>(sim_memory().allocate(8 * sizeof(float)));
  gate.block(stream);
  copy_host_to_device_async(stream, d, source.data(), 8 * sizeof(float));
  source.assign(8, 42.0f);  // rewritten before the stream passed the copy
  gate.open();
  copy_device_to_host_async(stream, out.data(), d, 8 * sizeof(float));
  stream.synchronize();
  EXPECT_EQ(out, std::vector<float>(8, 42.0f));
  sim_memory().free(d);
}

TEST(SimCopy, DeviceToDeviceAndMemset) {
  SimStream stream;
  constexpr size_t n = 1001;
  char* a = static_cast<char*>(sim_memory().allocate(n));
  char* b = static_cast<char*>(sim_memory().allocate(n));
  std::vector<char> out(n, 0);
  memset_async(stream, a, 0x5A, n);
  memset_async(stream, a + 10, 0x11, 5);
  copy_device_to_device_async(stream, b, a, n);
  copy_device_to_host_async(stream, out.data(), b, n);
  stream.synchronize();
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], (i >= 10 && i < 15) ? 0x11 : 0x5A) << i;
  sim_memory().free(a);
  sim_memory().free(b);
}

TEST(SimCopy, BadArgumentsThrowAtTheCall) {
  SimStream stream;
  char* d = static_cast<char*>(sim_memory().allocate(64));
  char* e = static_cast<char*>(sim_memory().allocate(64));
  std::vector<char> host(128);
  expect_error<Error>([&] { copy_host_to_device_async(stream, d, e, 64); }, "wrong copy direction");
  expect_error<Error>([&] { copy_device_to_host_async(stream, e, d, 64); }, "wrong copy direction");
  expect_error<Error>([&] { copy_host_to_device_async(stream, d, nullptr, 64); }, "null");
  expect_error<InternalError>([&] { copy_host_to_device_async(stream, d, host.data(), 128); }, "past the end");
  expect_error<InternalError>([&] { copy_device_to_host_async(stream, host.data(), host.data(), 8); },
                              "not a sim device pointer");
  expect_error<Error>([&] { copy_device_to_device_async(stream, d + 8, d, 16); }, "overlap");
  expect_error<InternalError>([&] { memset_async(stream, d + 60, 0, 8); }, "past the end");
  expect_error<InternalError>([&] { free_async(stream, host.data()); }, "not a sim device pointer");
  stream.synchronize();  // nothing was queued
  sim_memory().free(d);
  sim_memory().free(e);
}

TEST(SimCopy, StreamOrderedFreePoisonsOnlyAfterEarlierTasks) {
  Gate gate;  // outlives the stream
  SimStream stream;
  constexpr size_t n = 16;
  const std::vector<float> values = iota_floats(n, 3.0f);
  float* d = static_cast<float*>(sim_memory().allocate(n * sizeof(float)));
  copy_host_to_device_async(stream, d, values.data(), n * sizeof(float));
  gate.block(stream);
  std::vector<float> seen_by_kernel;
  stream.enqueue([&] {
    const float* xs = sim_memory().untag_array(static_cast<const float*>(d), n);
    seen_by_kernel.assign(xs, xs + n);
  });
  const size_t live_before = sim_memory().stats().live_bytes;
  free_async(stream, d);
  gate.wait_entered();
  // Queued, not reached: still live, still holding the data.
  const float* host = sim_memory().untag_array(static_cast<const float*>(d), n);
  EXPECT_EQ(std::vector<float>(host, host + n), values);
  EXPECT_EQ(sim_memory().stats().live_bytes, live_before);
  gate.open();
  stream.synchronize();
  EXPECT_EQ(seen_by_kernel, values);  // the task before the free saw the data
  EXPECT_EQ(sim_memory().stats().live_bytes, live_before - n * sizeof(float));
  EXPECT_EQ(word_at(host, 0), kFreePoison);  // quarantined: mapped, poisoned
  expect_error<InternalError>([&] { sim_memory().untag(d, 4); }, "use after free");
}

}  // namespace
}  // namespace kiln::sim
