// The NCCL device communicator with one rank (the GPU-check machine has one GPU; NCCL refuses
// two ranks on one device). Multi-rank runs need a multi-GPU machine: docs/distributed.md.
#include <gtest/gtest.h>

#if KILN_HAVE_NCCL
#include <cuda_runtime.h>

#include <chrono>
#include <cstdlib>
#include <numeric>
#include <thread>
#include <vector>

#include "core/communicator.h"
#include "core/cuda/nccl_communicator.h"
#include "tests/cuda/cuda_test_util.h"

namespace kiln::cuda {
namespace {

// Holds the stream for 50 ms, so synchronize() polls a busy stream at least once.
void CUDART_CB hold_stream(void*) { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }

TEST(NcclCommunicator, OneRankCollectives) {
  KILN_REQUIRE_GPU();
  LocalCommunicator host;
  NcclCommunicator comm(host, 0);
  EXPECT_EQ(comm.size(), 1);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  ASSERT_EQ(cudaLaunchHostFunc(stream, hold_stream, nullptr), cudaSuccess);
  const int64_t n = 1 << 20;
  std::vector<float> host_in(n);
  std::iota(host_in.begin(), host_in.end(), 1.0f);
  float *data = nullptr, *gathered = nullptr;
  ASSERT_EQ(cudaMalloc(&data, n * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&gathered, n * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(data, host_in.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(gathered, 0xff, n * sizeof(float)), cudaSuccess);  // NaN poison
  comm.all_reduce_sum(data, n, stream);
  comm.broadcast(data, n * sizeof(float), 0, stream);
  comm.all_gather(data, gathered, n * sizeof(float), stream);
  comm.synchronize(stream, 30);
  // The busy polls' cudaErrorNotReady must not be left behind as the last error.
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<float> out(n), out_gathered(n);
  ASSERT_EQ(cudaMemcpy(out.data(), data, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(out_gathered.data(), gathered, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(out, host_in);  // a sum over one rank is the rank's own data
  EXPECT_EQ(out_gathered, host_in);
  cudaFree(data);
  cudaFree(gathered);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace kiln::cuda
#endif
