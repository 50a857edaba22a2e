#pragma once
// Batch normalisation on the GPU over the channel (last) dimension of x [rows, channels], fp32
// (the CPU set: kernels/batch_norm.h). Statistics are deterministic double sums
// (column_sums.cuh); two passes (mean, then squared deviations), as the CPU path does.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels::cuda {

void batch_norm_forward_training(const Stream& s, int64_t rows, int64_t channels, const float* x, const float* gamma,
                                 const float* beta, float eps, float momentum, float* y, float* save_mean,
                                 float* save_inv_std, float* running_mean, float* running_var);
void batch_norm_forward_inference(const Stream& s, int64_t rows, int64_t channels, const float* x, const float* gamma,
                                  const float* beta, const float* running_mean, const float* running_var, float eps,
                                  float* y);
// dx, and dgamma/dbeta accumulated (+=).
void batch_norm_backward(const Stream& s, int64_t rows, int64_t channels, const float* x, const float* dy,
                         const float* gamma, const float* save_mean, const float* save_inv_std, float* dx,
                         float* dgamma, float* dbeta);

}  // namespace kiln::kernels::cuda
