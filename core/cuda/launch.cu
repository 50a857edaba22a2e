// validate_launch and check_launch (see core/cuda/launch.cuh).
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "core/cuda/launch.cuh"

namespace kiln::cuda {

namespace {

struct KernelInfo {
  LaunchLimits limits;
  size_t dynamic_smem_set = 48 << 10;  // the kernel's current cudaFuncAttributeMaxDynamicSharedMemorySize
};

}  // namespace

void validate_launch(const char* kernel, const void* func, dim3 grid, dim3 block, size_t dynamic_smem) {
  static std::mutex mutex;
  static std::map<std::pair<int, const void*>, KernelInfo> cache;
  int device = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, fresh] = cache.try_emplace({device, func});
  KernelInfo& info = it->second;
  if (fresh) {
    cudaFuncAttributes attr{};
    const cudaError_t err = cudaFuncGetAttributes(&attr, func);
    if (err != cudaSuccess) {
      cache.erase(it);
      // Typically "no kernel image is available": the build does not target this GPU.
      fail("kernel ", kernel, ": cannot query its attributes on device ", device, ": ", cudaGetErrorString(err),
           " (is the build's CUDA architecture this GPU's?)");
    }
    cudaDeviceProp prop{};
    KILN_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    LaunchLimits& l = info.limits;
    l.max_threads_per_block = attr.maxThreadsPerBlock;
    l.static_smem = attr.sharedSizeBytes;
    l.max_dynamic_smem = prop.sharedMemPerBlockOptin > attr.sharedSizeBytes ? prop.sharedMemPerBlockOptin - attr.sharedSizeBytes : 0;
    for (int i = 0; i < 3; ++i) {
      l.max_grid[i] = prop.maxGridSize[i];
      l.max_block[i] = prop.maxThreadsDim[i];
    }
    info.dynamic_smem_set = static_cast<size_t>(attr.maxDynamicSharedSizeBytes);
  }
  LaunchRequest r;
  r.grid[0] = grid.x, r.grid[1] = grid.y, r.grid[2] = grid.z;
  r.block[0] = static_cast<int>(block.x), r.block[1] = static_cast<int>(block.y), r.block[2] = static_cast<int>(block.z);
  r.dynamic_smem = dynamic_smem;
  const std::string problem = check_launch_limits(kernel, info.limits, r);
  if (!problem.empty()) fail(problem);
  if (dynamic_smem > info.dynamic_smem_set) {
    const cudaError_t err =
        cudaFuncSetAttribute(func, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic_smem));
    if (err != cudaSuccess)
      fail("kernel ", kernel, ": cannot raise its dynamic shared memory to ", dynamic_smem, " bytes: ",
           cudaGetErrorString(err));
    info.dynamic_smem_set = dynamic_smem;
  }
}

void check_launch(const char* kernel, cudaStream_t stream, const char* file, int line) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) fail(file, ":", line, ": launch of kernel ", kernel, " failed: ", cudaGetErrorString(err));
  static const bool sync_check = [] {
    const char* v = std::getenv("KILN_CUDA_SYNC_CHECK");
    return v && std::strcmp(v, "0") != 0 && *v;
  }();
  if (sync_check) {
    const cudaError_t e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess) fail("kernel ", kernel, " failed while running: ", cudaGetErrorString(e));
  }
}

}  // namespace kiln::cuda
