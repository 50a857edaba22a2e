#pragma once
// kiln::cuda::launch: validate a kernel's launch resources against the device, launch it, and
// check the launch, with the kernel's name in every error. Every Kiln kernel is launched this way.
#include <cuda_runtime.h>

#include <utility>

#include "core/cuda/check.h"
#include "core/cuda/launch.h"

namespace kiln::cuda {

// Throws kiln::Error naming `kernel` when grid, block or dynamic shared memory exceed what the
// device and the compiled kernel allow; raises the kernel's dynamic shared-memory limit when it
// needs more than the default 48 KiB.
void validate_launch(const char* kernel, const void* func, dim3 grid, dim3 block, size_t dynamic_smem);

template <typename... KernelArgs, typename... Args>
void launch(const char* name, void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t dynamic_smem,
            cudaStream_t stream, Args&&... args) {
  validate_launch(name, reinterpret_cast<const void*>(kernel), grid, block, dynamic_smem);
  kernel<<<grid, block, dynamic_smem, stream>>>(std::forward<Args>(args)...);
  check_launch(name, stream, __FILE__, __LINE__);
}

}  // namespace kiln::cuda
