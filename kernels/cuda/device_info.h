#pragma once
// Properties of the current CUDA device that launch configurations depend on, queried once.
namespace kiln::kernels::cuda {

int current_device();
int sm_count();  // multiprocessors of the current device

}  // namespace kiln::kernels::cuda
