#pragma once
// Batch normalisation over the last (channel) dimension of x [rows, channels]: NHWC images
// (rows = n*h*w) and dense features alike.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

// Training: normalises with the batch statistics, saves mean and 1/sqrt(var + eps) for backward
// and updates running_mean/var as r = (1 - momentum) r + momentum batch (var unbiased).
template <typename T>
void batch_norm_forward_training(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* gamma,
                                 const T* beta, T eps, T momentum, T* y, T* save_mean, T* save_inv_std,
                                 T* running_mean, T* running_var);

template <typename T>
void batch_norm_forward_inference(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* gamma,
                                  const T* beta, const T* running_mean, const T* running_var, T eps, T* y);

// dx, and dgamma/dbeta accumulated (+=) into the parameter gradients.
template <typename T>
void batch_norm_backward(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* dy, const T* gamma,
                         const T* save_mean, const T* save_inv_std, T* dx, T* dgamma, T* dbeta);

}  // namespace kiln::kernels
