#include "core/cuda/launch.h"

#include "core/error.h"

namespace kiln::cuda {

std::string check_launch_limits(const char* kernel, const LaunchLimits& limits, const LaunchRequest& r) {
  const int64_t threads = int64_t{r.block[0]} * r.block[1] * r.block[2];
  static const char* axis = "xyz";
  for (int i = 0; i < 3; ++i) {
    if (r.block[i] < 1 || r.block[i] > limits.max_block[i])
      return str_cat("kernel ", kernel, ": block.", axis[i], " = ", r.block[i], " outside [1, ", limits.max_block[i],
                     "]");
    if (r.grid[i] < 1 || r.grid[i] > limits.max_grid[i])
      return str_cat("kernel ", kernel, ": grid.", axis[i], " = ", r.grid[i], " outside [1, ", limits.max_grid[i], "]");
  }
  if (threads > limits.max_threads_per_block)
    return str_cat("kernel ", kernel, ": ", threads, " threads per block, but its registers allow at most ",
                   limits.max_threads_per_block, " on this device");
  if (r.dynamic_smem > limits.max_dynamic_smem)
    return str_cat("kernel ", kernel, ": ", r.dynamic_smem, " bytes of dynamic shared memory (+", limits.static_smem,
                   " static), but the device allows ", limits.max_dynamic_smem, " dynamic bytes for it");
  return {};
}

}  // namespace kiln::cuda
