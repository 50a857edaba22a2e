#pragma once
// Launch-resource validation: a kernel whose block size, registers or shared memory exceed what
// the device offers fails loudly, naming the kernel and the numbers, instead of returning a launch
// error (or, worse, silently running nothing). check_launch_limits is plain C++ so it is tested on
// any machine; validate_launch (CUDA builds) reads the limits off the device and the kernel.
#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln::cuda {

struct LaunchLimits {
  int max_threads_per_block = 1024;  // the kernel's own limit (registers included)
  size_t static_smem = 0;            // the kernel's static shared memory
  size_t max_dynamic_smem = 48 << 10;  // device opt-in limit minus static shared memory
  int64_t max_grid[3] = {2147483647, 65535, 65535};
  int max_block[3] = {1024, 1024, 64};
};

struct LaunchRequest {
  int64_t grid[3] = {1, 1, 1};
  int block[3] = {1, 1, 1};
  size_t dynamic_smem = 0;
};

// Empty when the launch fits; otherwise a message naming `kernel` and what does not fit.
std::string check_launch_limits(const char* kernel, const LaunchLimits& limits, const LaunchRequest& request);

// Blocks of `threads` to cover `n` items, at most `max_blocks` (grid-stride loops cover the rest).
inline int64_t blocks_for(int64_t n, int threads, int64_t max_blocks = 65535LL * 16) {
  if (n <= 0) return 1;
  const int64_t b = (n + threads - 1) / threads;
  return b < max_blocks ? b : max_blocks;
}

}  // namespace kiln::cuda
