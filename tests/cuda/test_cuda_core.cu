// core/cuda on a real device: the caching allocator's steady state, cross-stream reuse, pinned
// buffers, and launch validation that names the kernel.
#include <gtest/gtest.h>

#include <string>

#include "core/allocator.h"
#include "core/cuda/device_guard.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/memory.h"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "tests/cuda/cuda_test_util.h"

namespace kiln {
namespace {

__global__ void fill_kernel(float* p, int n, float v) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = v;
}

__global__ void __launch_bounds__(128) bounded_kernel(float* p) { p[threadIdx.x] = 1.0f; }

// Spins for about `cycles` clock cycles, then writes 1.
__global__ void delayed_write_kernel(int* p, long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
  *p = 1;
}

TEST(CudaCore, CachingAllocatorSteadyStateHasNoMallocs) {
  KILN_REQUIRE_GPU();
  cuda::CudaStream stream(0);
  cuda::CachingAllocator& alloc = cuda::device_allocator(0);
  auto step = [&] {
    void* a = alloc.allocate(1 << 20, stream.get());
    void* b = alloc.allocate(12345, stream.get());
    cuda::launch("fill_kernel", fill_kernel, dim3(1024), dim3(256), 0, stream.get(), static_cast<float*>(a),
                 (1 << 20) / 4, 1.0f);
    alloc.deallocate(a);
    alloc.deallocate(b);
  };
  step();
  const uint64_t mallocs = alloc.stats().device_mallocs;
  for (int i = 0; i < 100; ++i) step();
  stream.synchronize();
  EXPECT_EQ(alloc.stats().device_mallocs, mallocs);
  EXPECT_GE(alloc.stats().cache_hits, 200u);
  EXPECT_GE(alloc.stats().peak_bytes_in_use, size_t{1} << 20);
}

TEST(CudaCore, TensorsUseTheCachingAllocator) {
  KILN_REQUIRE_GPU();
  Allocator& a = allocator_for(Device::cuda(0));
  void* p = a.allocate(4096);
  a.deallocate(p, 4096);
  const uint64_t mallocs = cuda::device_allocator(0).stats().device_mallocs;
  void* q = a.allocate(4096);
  EXPECT_EQ(cuda::device_allocator(0).stats().device_mallocs, mallocs) << "a freed block is reused";
  a.deallocate(q, 4096);
}

TEST(CudaCore, PinnedBufferRoundTrip) {
  KILN_REQUIRE_GPU();
  cuda::CudaStream stream(0);
  cuda::PinnedHostBuffer pinned(4096 * sizeof(float));
  auto* h = static_cast<float*>(pinned.data());
  for (int i = 0; i < 4096; ++i) h[i] = static_cast<float>(i);
  cuda_test::DeviceBuffer<float> d(4096);
  pinned.copy_to_device_async(d.get(), 4096 * sizeof(float), stream.get());
  stream.synchronize();
  const auto back = d.download();
  for (int i = 0; i < 4096; ++i) ASSERT_EQ(back[i], static_cast<float>(i));
}

TEST(CudaCore, OversizedLaunchFailsLoudlyWithTheKernelName) {
  KILN_REQUIRE_GPU();
  cuda_test::DeviceBuffer<float> d(1024);
  try {
    cuda::launch("bounded_kernel", bounded_kernel, dim3(1), dim3(256), 0, nullptr, d.get());
    FAIL() << "a 256-thread launch of a 128-thread kernel must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bounded_kernel"), std::string::npos) << e.what();
  }
  try {
    cuda::launch("fill_kernel", fill_kernel, dim3(1), dim3(64), size_t{1} << 30, nullptr, d.get(), 64, 1.0f);
    FAIL() << "1 GiB of shared memory must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shared memory"), std::string::npos) << e.what();
  }
  // A valid launch still works afterwards.
  cuda::launch("bounded_kernel", bounded_kernel, dim3(1), dim3(128), 0, nullptr, d.get());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// CudaStream is blocking by default: legacy-stream work (where Tensor memory is allocated and
// freed) waits for it. A kernel writes a flag after ~50 ms on the created stream; a copy of the
// flag on the legacy stream, issued at once, must see the write. On a non-blocking stream (the
// old default) the copy ran at once and read 0.
TEST(CudaCore, StreamsAreBlockingByDefault) {
  KILN_REQUIRE_GPU();
  cuda::CudaStream blocking(0), non_blocking(0, cuda::StreamSync::non_blocking);
  unsigned flags = 0;
  KILN_CUDA_OK(cudaStreamGetFlags(blocking.get(), &flags));
  EXPECT_EQ(flags, static_cast<unsigned>(cudaStreamDefault));
  EXPECT_EQ(blocking.sync(), cuda::StreamSync::blocking);
  KILN_CUDA_OK(cudaStreamGetFlags(non_blocking.get(), &flags));
  EXPECT_EQ(flags, static_cast<unsigned>(cudaStreamNonBlocking));
  int clock_khz = 0;
  KILN_CUDA_OK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
  cuda_test::DeviceBuffer<int> flag(std::vector<int>{0});
  int* pinned = nullptr;
  KILN_CUDA_OK(cudaMallocHost(&pinned, sizeof(int)));
  *pinned = -1;
  cuda::launch("delayed_write_kernel", delayed_write_kernel, dim3(1), dim3(1), 0, blocking.get(), flag.get(),
               static_cast<long long>(clock_khz) * 50);
  KILN_CUDA_OK(cudaMemcpyAsync(pinned, flag.get(), sizeof(int), cudaMemcpyDeviceToHost, nullptr));
  KILN_CUDA_OK(cudaStreamSynchronize(nullptr));
  EXPECT_EQ(*pinned, 1) << "the legacy stream ran before the blocking stream's kernel finished";
  KILN_CUDA_OK(cudaDeviceSynchronize());
  cudaFreeHost(pinned);
}

// DeviceGuard and CudaStream leave the caller's current device as it was.
TEST(CudaCore, DeviceGuardRestoresTheCurrentDevice) {
  KILN_REQUIRE_GPU();
  int count = 0, before = -1, after = -1;
  KILN_CUDA_OK(cudaGetDeviceCount(&count));
  const int other = count - 1;  // device 0 itself on a one-GPU machine: the guard is a no-op
  KILN_CUDA_OK(cudaSetDevice(0));
  {
    cuda::DeviceGuard guard(other);
    KILN_CUDA_OK(cudaGetDevice(&before));
    EXPECT_EQ(before, other);
    EXPECT_EQ(guard.previous(), 0);
  }
  KILN_CUDA_OK(cudaGetDevice(&after));
  EXPECT_EQ(after, 0);
  { cuda::CudaStream stream(other); }
  KILN_CUDA_OK(cudaGetDevice(&after));
  EXPECT_EQ(after, 0) << "CudaStream(" << other << ") left its device current";
}

// Kernel scratch goes to the device of the kernel's stream, not the thread's current device
// (a rank on device 1 whose thread is on 0). On a one-GPU machine both are device 0.
TEST(CudaCore, DeviceArrayTakesTheStreamsDevice) {
  KILN_REQUIRE_GPU();
  int count = 0;
  KILN_CUDA_OK(cudaGetDeviceCount(&count));
  const int other = count - 1;
  KILN_CUDA_OK(cudaSetDevice(0));
  cuda::CudaStream stream(other);
  cuda::DeviceArray<float> scratch(256, stream.get());
  cudaPointerAttributes attributes{};
  KILN_CUDA_OK(cudaPointerGetAttributes(&attributes, scratch.get()));
  EXPECT_EQ(attributes.device, other);
  EXPECT_EQ(cuda::DeviceArray<float>::device_of(stream.get()), other);
}

TEST(CudaCore, EventTimingIsPositive) {
  KILN_REQUIRE_GPU();
  cuda::CudaStream stream(0);
  cuda::CudaEvent start, stop;
  cuda_test::DeviceBuffer<float> d(1 << 20);
  start.record(stream.get());
  cuda::launch("fill_kernel", fill_kernel, dim3(4096), dim3(256), 0, stream.get(), d.get(), 1 << 20, 2.0f);
  stop.record(stream.get());
  stop.synchronize();
  EXPECT_GE(stop.elapsed_ms_since(start), 0.0f);
}

}  // namespace
}  // namespace kiln
