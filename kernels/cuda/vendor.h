#pragma once
// The VENDOR kernel library on the GPU (kernels/kernel_library.h): convolution and batch norm
// through cuDNN, with the same arguments and semantics as Kiln's kernels (kernels/conv.h,
// kernels/batch_norm.h), fp32 data. The GEMM's vendor path is gemm_cublaslt (kernels/cuda/gemm.h).
// At precision FP32 the convolutions run here whatever the kernel library (kernels/cuda_route.h).
// In a build without cuDNN every function throws kiln::Error saying so.
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"
#include "kernels/conv.h"

namespace kiln::kernels::cuda {

// Whether this build has cuDNN (else the functions below throw).
bool have_cudnn();

// y = act(conv(x, w) + bias); bias may be null. cuDNN's convolution at the stream's precision
// (TF32: its default math, tensor cores; FP32: CUDNN_FMA_MATH, no tensor cores), then Kiln's
// bias_activation epilogue. The same math for the two gradients.
void cudnn_conv2d_forward(const Stream& s, const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                          float* y, Activation act, float slope);
// dx = conv-transpose(dy, w); overwrites dx.
void cudnn_conv2d_backward_data(const Stream& s, const Conv2dShape& shape, const float* dy, const float* w, float* dx);
// dw (+)= correlation of x and dy; dbias (+)= sum of dy over n, h, w (dbias may be null).
void cudnn_conv2d_backward_weight(const Stream& s, const Conv2dShape& shape, const float* x, const float* dy,
                                  float* dw, float* dbias, bool accumulate);

// Spatial batch norm over x [rows, channels] (channels last), as kernels/batch_norm.h.
void cudnn_batch_norm_forward_training(const Stream& s, int64_t rows, int64_t channels, const float* x,
                                       const float* gamma, const float* beta, float eps, float momentum, float* y,
                                       float* save_mean, float* save_inv_std, float* running_mean, float* running_var);
void cudnn_batch_norm_forward_inference(const Stream& s, int64_t rows, int64_t channels, const float* x,
                                        const float* gamma, const float* beta, const float* running_mean,
                                        const float* running_var, float eps, float* y);
// dx, and dgamma/dbeta accumulated (+=).
void cudnn_batch_norm_backward(const Stream& s, int64_t rows, int64_t channels, const float* x, const float* dy,
                               const float* gamma, const float* save_mean, const float* save_inv_std, float* dx,
                               float* dgamma, float* dbeta);

}  // namespace kiln::kernels::cuda
