// Host-side logic of the CUDA backend, tested on any machine (no GPU needed): the launch-limit
// check and the GEMM tiling math. The caching allocator's policy is tested in every build
// (tests/core/caching_allocator_test.cc).
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>

#include "core/cuda/launch.h"
#include "core/error.h"
#include "kernels/cuda/gemm_tiling.h"
#include "tests/cuda/cuda_test_util.h"

namespace kiln {
namespace {

TEST(CudaLaunchLimits, NamesTheKernelAndTheLimit) {
  cuda::LaunchLimits limits;
  limits.max_threads_per_block = 256;
  limits.max_dynamic_smem = 100 << 10;
  cuda::LaunchRequest ok;
  ok.grid[0] = 1000;
  ok.block[0] = 256;
  ok.dynamic_smem = 80 << 10;
  EXPECT_EQ(cuda::check_launch_limits("k", limits, ok), "");
  cuda::LaunchRequest too_many = ok;
  too_many.block[0] = 512;
  const std::string m1 = cuda::check_launch_limits("my_kernel", limits, too_many);
  EXPECT_NE(m1.find("my_kernel"), std::string::npos);
  EXPECT_NE(m1.find("512"), std::string::npos);
  cuda::LaunchRequest too_much_smem = ok;
  too_much_smem.dynamic_smem = 200 << 10;
  EXPECT_NE(cuda::check_launch_limits("gemm", limits, too_much_smem).find("shared memory"), std::string::npos);
  cuda::LaunchRequest bad_grid = ok;
  bad_grid.grid[1] = 70000;
  EXPECT_NE(cuda::check_launch_limits("g", limits, bad_grid).find("grid.y"), std::string::npos);
  EXPECT_EQ(cuda::blocks_for(0, 256), 1);
  EXPECT_EQ(cuda::blocks_for(257, 256), 2);
  EXPECT_EQ(cuda::blocks_for(int64_t{1} << 40, 256, 4096), 4096);
}

TEST(CudaGemmTiling, GroupedOrderVisitsEveryTileOnce) {
  using kernels::cuda::grouped_tile;
  for (auto [tm, tn] : {std::pair<int64_t, int64_t>{1, 1}, {3, 5}, {8, 8}, {17, 3}, {9, 64}, {100, 1}}) {
    std::set<std::pair<int64_t, int64_t>> seen;
    for (int64_t pid = 0; pid < tm * tn; ++pid) {
      const auto t = grouped_tile(pid, tm, tn, 8);
      ASSERT_GE(t.m, 0);
      ASSERT_LT(t.m, tm);
      ASSERT_GE(t.n, 0);
      ASSERT_LT(t.n, tn);
      seen.insert({t.m, t.n});
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), tm * tn) << tm << "x" << tn;
  }
}

TEST(CudaGemmTiling, TileConfigurationsFitAHopperMultiprocessor) {
  using kernels::cuda::GemmTile;
  using Large16 = GemmTile<2, 128, 128, 64, 32, 4>;
  using Large32 = GemmTile<4, 128, 128, 64, 32, 4>;
  using Small16 = GemmTile<2, 64, 64, 32, 32, 4>;
  EXPECT_EQ(Large16::kThreads, 256);
  EXPECT_EQ(Small16::kThreads, 128);
  EXPECT_EQ(Large16::kBK, 32);
  EXPECT_EQ(Large32::kBK, 16);
  constexpr size_t kHopperOptin = 227 << 10;
  for (bool ak : {false, true})
    for (bool bk : {false, true}) {
      EXPECT_LE(Large16::smem_bytes(ak, bk), kHopperOptin);
      EXPECT_LE(Large32::smem_bytes(ak, bk), kHopperOptin);
      // Every stage and every padded row starts 16-byte aligned (cp.async, ldmatrix).
      EXPECT_EQ(Large16::tile_elems(ak, 128) * 2 % 16, 0);
      EXPECT_EQ(Large32::tile_elems(ak, 128) * 4 % 16, 0);
      EXPECT_EQ(Large16::stride(ak, 128) * 2 % 16, 0);
      EXPECT_EQ(Large32::stride(bk, 128) * 4 % 16, 0);
    }
  // Conflict-free strides: ldmatrix rows 16 bytes apart mod 128; tf32 scalar loads 4 or 8 words
  // apart mod 32 (see gemm_tiling.h).
  EXPECT_EQ(Large16::stride(true, 128) * 2 % 128, 80);
  EXPECT_EQ(Large16::stride(false, 128) * 2 % 128, 16);
  EXPECT_EQ(Large32::stride(true, 128) % 32, 20);
  EXPECT_EQ(Large32::stride(false, 128) % 32, 8);
  EXPECT_TRUE(kernels::cuda::use_large_tile(4096, 4096, 132));
  EXPECT_FALSE(kernels::cuda::use_large_tile(512, 512, 132));
  EXPECT_EQ(kernels::cuda::chunk_valid(64, 71, 8), 7);
  EXPECT_EQ(kernels::cuda::chunk_valid(72, 71, 8), 0);
  EXPECT_EQ(kernels::cuda::chunk_valid(0, 71, 8), 8);
}

void gpu_test_body() { KILN_REQUIRE_GPU(); }

// With KILN_REQUIRE_GPU=1 a GPU test fails, naming the runtime's reason, where it would skip:
// scripts/gpu_check.sh sets it, so a machine whose runtime cannot reach the GPU (driver too
// old, say) cannot pass the run by skipping every test. Runs where no GPU is usable (CI).
TEST(CudaTestUtil, RequireGpuFailsInsteadOfSkipping) {
  const std::string why = cuda_unavailable_reason();
  if (why.empty()) GTEST_SKIP() << "a GPU is usable here: the helper would pass, not fail";
  const char* saved = std::getenv("KILN_REQUIRE_GPU");
  const std::string saved_value = saved ? saved : "";
  setenv("KILN_REQUIRE_GPU", "1", 1);
  EXPECT_FATAL_FAILURE(gpu_test_body(), "KILN_REQUIRE_GPU=1 but no usable CUDA device: " + why);
  if (saved) setenv("KILN_REQUIRE_GPU", saved_value.c_str(), 1);
  else unsetenv("KILN_REQUIRE_GPU");
}

void allocate_four_pebibytes() { cuda_test::DeviceBuffer<float> huge(size_t{1} << 50); }
void report_a_cuda_error() { cuda_test::cuda_ok(cudaErrorInvalidValue, "a copy"); }

// The test buffers report CUDA failures as test failures (they used to ignore them: a failed
// allocation left a null pointer, a failed copy or kernel a buffer of stale bytes). On any
// machine: 4 PiB cannot be allocated with or without a GPU.
TEST(CudaTestUtil, DeviceBufferReportsCudaErrors) {
  EXPECT_NONFATAL_FAILURE(allocate_four_pebibytes(), "cudaMalloc");
  EXPECT_NONFATAL_FAILURE(report_a_cuda_error(), "a copy: ");
  EXPECT_TRUE(cuda_test::cuda_ok(cudaSuccess, "nothing"));
}

}  // namespace
}  // namespace kiln
