#include "kernels/cuda/device_info.h"

#include <mutex>
#include <unordered_map>

#include "core/cuda/check.h"

namespace kiln::kernels::cuda {

int current_device() {
  int d = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

int sm_count() {
  static std::mutex mutex;
  static std::unordered_map<int, int> cache;
  const int d = current_device();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(d);
  if (it != cache.end()) return it->second;
  int sms = 0;
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, d));
  cache[d] = sms;
  return sms;
}

}  // namespace kiln::kernels::cuda
