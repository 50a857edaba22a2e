#pragma once
// The VENDOR kernel library on the GPU (kernels/kernel_library.h): convolution, pooling and batch
// norm through cuDNN, with the same arguments and semantics as Kiln's kernels (kernels/conv.h,
// kernels/batch_norm.h), fp32 data. The GEMM's vendor path is gemm_cublaslt (kernels/cuda/gemm.h).
// At precision FP32 the convolutions run here whatever the kernel library (kernels/cuda_route.h).
// In a build without cuDNN every function throws kiln::Error saying so.
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/pooling.h"

namespace kiln::kernels::cuda {

// Whether this build has cuDNN (else the functions below throw).
bool have_cudnn();

// y = act(conv(x, w) + bias); bias may be null. cuDNN's convolution at the stream's precision
// (TF32: its default math, tensor cores; FP32: CUDNN_FMA_MATH, no tensor cores), then Kiln's
// bias_activation epilogue. The same math for the two gradients. BF16: the default math on the
// multiplied operands rounded to bf16 (kept in fp32, so the products are exact), fp32 output.
void cudnn_conv2d_forward(const Stream& s, const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                          float* y, Activation act, float slope);
// dx = conv-transpose(dy, w); overwrites dx.
void cudnn_conv2d_backward_data(const Stream& s, const Conv2dShape& shape, const float* dy, const float* w, float* dx);
// dw (+)= correlation of x and dy; dbias (+)= sum of dy over n, h, w (dbias may be null).
void cudnn_conv2d_backward_weight(const Stream& s, const Conv2dShape& shape, const float* x, const float* dy,
                                  float* dw, float* dbias, bool accumulate);

// Pooling (kernels/pooling.h) through cuDNN's pooling: averages exclude padding
// (CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING), the global average is a window over the whole
// image. The max pool's forward is cuDNN's (CUDNN_POOLING_MAX_DETERMINISTIC); its argmax, which
// Kiln's backward routes the gradient by, is the first cell of each window (the CPU's scan order)
// holding cuDNN's maximum. There is no cuDNN max-pool backward here: cuDNN's needs x and y, which
// kernels::max_pool2d_backward does not take, so Kiln's gather kernel (one thread per input
// element, no atomics) runs under VENDOR too.
void cudnn_max_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y, int32_t* argmax);
void cudnn_avg_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y);
void cudnn_avg_pool2d_backward(const Stream& s, const Pool2dShape& shape, const float* dy, float* dx);
void cudnn_global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* x, float* y);
void cudnn_global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* dy, float* dx);

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
