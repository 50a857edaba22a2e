// The sim device catches real mistakes in code that runs kernels (kernels/dispatch.h): results
// read before the stream got there, host pointers and short buffers passed to a kernel, memory
// freed while a kernel still needs it. Every ordering is made deterministic by a gate that holds
// the stream busy (no timing). CTest label: sim.
#include <gtest/gtest.h>

#include <cmath>
#include <latch>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/sim/sim_copy.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"
#include "kernels/activation.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using sim::sim_memory;
using sim::SimStream;
using test::expect_error;

// Holds a stream inside one task until open(): "the GPU is still busy".
class Gate {
 public:
  explicit Gate(SimStream& stream) {
    stream.enqueue([this] { opened_.wait(); });
  }
  ~Gate() { open(); }
  void open() {
    if (!open_) opened_.count_down();
    open_ = true;
  }

 private:
  std::latch opened_{1};
  bool open_ = false;
};

template <typename T>
T* device_copy(SimStream& stream, const std::vector<T>& host) {
  T* p = static_cast<T*>(sim_memory().allocate(host.size() * sizeof(T)));
  sim::copy_host_to_device_async(stream, p, host.data(), host.size() * sizeof(T));
  stream.synchronize();
  return p;
}

template <typename T>
std::vector<T> host_copy(SimStream& stream, const T* p, size_t n) {
  std::vector<T> host(n);
  sim::copy_device_to_host_async(stream, host.data(), p, n * sizeof(T));
  stream.synchronize();
  return host;
}

TEST(SimKernelChecks, ResultReadBeforeTheStreamGotThereIsPoison) {
  SimStream compute, reader;
  const std::vector<float> x = {-1.0f, 2.0f, -3.0f, 4.0f};
  float* dx = device_copy(compute, x);
  float* dy = static_cast<float*>(sim_memory().allocate(x.size() * sizeof(float)));
  double* dsum = static_cast<double*>(sim_memory().allocate(sizeof(double)));
  Gate busy(compute);
  kernels::activation_forward<float>(compute.view(), kernels::Activation::relu, 0.0f, dx, dy, 4);
  kernels::sum_squares_async<float>(compute.view(), dx, 4, dsum);
  // The launches returned at once; read on another stream without waiting: nothing written yet.
  for (float v : host_copy(reader, dy, 4)) EXPECT_TRUE(std::isnan(v)) << v;
  EXPECT_TRUE(std::isnan(host_copy(reader, dsum, 1)[0]));
  busy.open();
  compute.synchronize();
  EXPECT_EQ(host_copy(reader, dy, 4), std::vector<float>({0.0f, 2.0f, 0.0f, 4.0f}));
  EXPECT_EQ(host_copy(reader, dsum, 1)[0], 30.0);
  for (void* p : {static_cast<void*>(dx), static_cast<void*>(dy), static_cast<void*>(dsum)}) sim_memory().free(p);
}

TEST(SimKernelChecks, HostPointerThrowsNamingTheOp) {
  SimStream stream;
  std::vector<float> host(8, 1.0f);
  float* dy = static_cast<float*>(sim_memory().allocate(8 * sizeof(float)));
  expect_error(
      [&] { kernels::activation_forward<float>(stream.view(), kernels::Activation::tanh, 0.0f, host.data(), dy, 8); },
      {"activation_forward", "argument x", "not a sim device pointer"});
  expect_error([&] { kernels::sum_squares<float>(stream.view(), host.data(), 8); }, {"sum_squares", "not a sim"});
  stream.synchronize();
  sim_memory().free(dy);
}

TEST(SimKernelChecks, ExtentPastTheEndThrowsNamingTheOp) {
  SimStream stream;
  float* dx = device_copy(stream, std::vector<float>(7, 1.0f));
  float* dy = static_cast<float*>(sim_memory().allocate(8 * sizeof(float)));
  // 8 elements of a 7-element input.
  expect_error([&] { kernels::activation_forward<float>(stream.view(), kernels::Activation::relu, 0.0f, dx, dy, 8); },
               {"activation_forward", "argument x", "past the end"});
  // A 2x4 output C with row stride 5 spans 5 + 4 = 9 elements; dy has 8.
  float* da = device_copy(stream, std::vector<float>(6, 1.0f));
  float* db = device_copy(stream, std::vector<float>(12, 1.0f));
  expect_error([&] { kernels::gemm<float>(stream.view(), false, false, 2, 4, 3, 1.0f, da, 3, db, 4, 0.0f, dy, 5); },
               {"gemm", "argument c", "past the end"});
  stream.synchronize();
  for (void* p : {static_cast<void*>(dx), static_cast<void*>(dy), static_cast<void*>(da), static_cast<void*>(db)})
    sim_memory().free(p);
}

TEST(SimKernelChecks, ExtentKnownOnlyOnTheDeviceIsCheckedWhenTheStreamRuns) {
  // offsets say 3 ids, the ids buffer holds 2: found when the kernel reads offsets[batch].
  SimStream stream;
  const int64_t* ids = device_copy(stream, std::vector<int64_t>{0, 1});
  const int64_t* offsets = device_copy(stream, std::vector<int64_t>{0, 2, 3});
  const float* table = device_copy(stream, std::vector<float>(4, 1.0f));
  float* out = static_cast<float*>(sim_memory().allocate(4 * sizeof(float)));
  kernels::embedding_forward<float>(stream.view(), table, 2, 2, ids, offsets, 2, kernels::Combiner::sum, out);
  expect_error([&] { stream.synchronize(); }, {"embedding_forward", "argument ids", "past the end"});
  for (const void* p : {static_cast<const void*>(ids), static_cast<const void*>(offsets),
                        static_cast<const void*>(table), static_cast<const void*>(out)})
    sim_memory().free(const_cast<void*>(p));
}

TEST(SimKernelChecks, UseAfterFreeIsCaught) {
  SimStream stream;
  float* dx = device_copy(stream, std::vector<float>(16, 1.0f));
  float* dy = static_cast<float*>(sim_memory().allocate(16 * sizeof(float)));
  {
    // Freed by the stream (free_async) before the kernel that still reads it: the launch finds
    // it live (the stream is busy), the kernel finds it freed.
    Gate busy(stream);
    sim::free_async(stream, dx);
    kernels::activation_forward<float>(stream.view(), kernels::Activation::sigmoid, 0.0f, dx, dy, 16);
  }
  expect_error([&] { stream.synchronize(); }, {"activation_forward", "argument x", "use after free"});
  // Freed on the host (a Tensor dropped) while the launch is queued.
  float* dz = device_copy(stream, std::vector<float>(16, 1.0f));
  {
    Gate busy(stream);
    kernels::activation_forward<float>(stream.view(), kernels::Activation::none, 0.0f, dz, dy, 16);
    sim_memory().free(dz);
  }
  expect_error([&] { stream.synchronize(); }, {"activation_forward", "use after free"});
  // Launching on memory already freed throws at the call.
  expect_error([&] { kernels::sum_squares<float>(stream.view(), dz, 16); }, {"sum_squares", "use after free"});
  sim_memory().free(dy);
}

TEST(SimKernelChecks, SynchronizingVariantsWaitForTheResult) {
  SimStream stream;
  const std::vector<float> logits = {0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.7f};
  const float* dl = device_copy(stream, logits);
  const int32_t* labels = device_copy(stream, std::vector<int32_t>{1, 0, 0});
  EXPECT_EQ(kernels::count_argmax_matches<float>(stream.view(), dl, labels, 3, 2), 2);
  int64_t* dcount = static_cast<int64_t*>(sim_memory().allocate(sizeof(int64_t)));
  kernels::count_argmax_matches_async<float>(stream.view(), dl, labels, 3, 2, dcount);
  EXPECT_EQ(host_copy(stream, dcount, 1)[0], 2);
  for (const void* p :
       {static_cast<const void*>(dl), static_cast<const void*>(labels), static_cast<const void*>(dcount)})
    sim_memory().free(const_cast<void*>(p));
}

}  // namespace
}  // namespace kiln
