#include "kernels/cuda/batch_norm.h"

#include "core/cuda/launch.cuh"
#include "core/cuda/memory.h"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/column_sums.cuh"
#include "kernels/cuda/elementwise.cuh"

namespace kiln::kernels::cuda {

namespace {

struct Value {
  const float* x;
  int64_t c;
  __device__ double operator()(int64_t r, int64_t ch) const { return x[r * c + ch]; }
};
struct SquaredDeviation {
  const float* x;
  int64_t c;
  const double* mean;
  __device__ double operator()(int64_t r, int64_t ch) const {
    const double d = static_cast<double>(x[r * c + ch]) - mean[ch];
    return d * d;
  }
};
// dy * xhat with xhat computed in fp32 as the CPU path does.
struct DyXhat {
  const float* x;
  const float* dy;
  int64_t c;
  const float* mean;
  const float* inv_std;
  __device__ double operator()(int64_t r, int64_t ch) const {
    const float xhat = (x[r * c + ch] - mean[ch]) * inv_std[ch];
    return static_cast<double>(dy[r * c + ch]) * static_cast<double>(xhat);
  }
};
struct StoreDouble {
  double* out;
  __device__ void operator()(int64_t ch, double t) const { out[ch] = t; }
};
struct StoreMean {
  double* out;
  int64_t rows;
  __device__ void operator()(int64_t ch, double t) const { out[ch] = t / static_cast<double>(rows); }
};

// Per channel: save_mean, save_inv_std, the affine scale/shift, the running statistics.
__global__ void bn_finalize_kernel(int64_t rows, int64_t channels, const double* mean, const double* sq,
                                   const float* gamma, const float* beta, float eps, float momentum, float* save_mean,
                                   float* save_inv_std, float* running_mean, float* running_var, float* scale,
                                   float* shift) {
  KILN_GRID_STRIDE(c, channels) {
    const double var = sq[c] / static_cast<double>(rows);
    const double inv_std = 1.0 / sqrt(var + static_cast<double>(eps));
    save_mean[c] = static_cast<float>(mean[c]);
    save_inv_std[c] = static_cast<float>(inv_std);
    const double g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double b = beta ? static_cast<double>(beta[c]) : 0.0;
    scale[c] = static_cast<float>(g * inv_std);
    shift[c] = static_cast<float>(b - mean[c] * g * inv_std);
    if (running_mean)
      running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * static_cast<float>(mean[c]);
    if (running_var) {
      const double unbiased = rows > 1 ? sq[c] / static_cast<double>(rows - 1) : var;
      running_var[c] = (1.0f - momentum) * running_var[c] + momentum * static_cast<float>(unbiased);
    }
  }
}

__global__ void bn_inference_consts_kernel(int64_t channels, const float* gamma, const float* beta,
                                           const float* running_mean, const float* running_var, float eps,
                                           float* scale, float* shift) {
  KILN_GRID_STRIDE(c, channels) {
    const double inv_std = 1.0 / sqrt(static_cast<double>(running_var[c]) + static_cast<double>(eps));
    const double g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double b = beta ? static_cast<double>(beta[c]) : 0.0;
    scale[c] = static_cast<float>(g * inv_std);
    shift[c] = static_cast<float>(b - static_cast<double>(running_mean[c]) * g * inv_std);
  }
}

__global__ void affine_kernel(int64_t rows, int64_t channels, const float* x, const float* scale, const float* shift,
                              float* y) {
  KILN_GRID_STRIDE(i, rows * channels) {
    const int64_t c = i % channels;
    y[i] = x[i] * scale[c] + shift[c];
  }
}

__global__ void bn_backward_consts_kernel(int64_t rows, int64_t channels, const float* gamma, const float* inv_std,
                                          const double* sum_dy, const double* sum_dy_xhat, float* k1, float* k2,
                                          float* k3, float* dgamma, float* dbeta) {
  KILN_GRID_STRIDE(c, channels) {
    const double n = static_cast<double>(rows);
    const double g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double inv = static_cast<double>(inv_std[c]);
    k1[c] = static_cast<float>(g * inv);
    k2[c] = static_cast<float>(-g * inv * inv * sum_dy_xhat[c] / n);
    k3[c] = static_cast<float>(-g * inv * sum_dy[c] / n);
    if (dgamma) dgamma[c] += static_cast<float>(sum_dy_xhat[c]);
    if (dbeta) dbeta[c] += static_cast<float>(sum_dy[c]);
  }
}

__global__ void bn_backward_dx_kernel(int64_t rows, int64_t channels, const float* x, const float* dy,
                                      const float* mean, const float* k1, const float* k2, const float* k3,
                                      float* dx) {
  KILN_GRID_STRIDE(i, rows * channels) {
    const int64_t c = i % channels;
    dx[i] = k1[c] * dy[i] + k2[c] * (x[i] - mean[c]) + k3[c];
  }
}

unsigned blocks(int64_t n) { return elementwise_blocks(n); }

}  // namespace

void batch_norm_forward_training(const Stream& s, int64_t rows, int64_t channels, const float* x, const float* gamma,
                                 const float* beta, float eps, float momentum, float* y, float* save_mean,
                                 float* save_inv_std, float* running_mean, float* running_var) {
  KILN_CHECK(s.device().is_cuda() && rows > 0 && channels > 0, "batch norm over ", rows, " rows, ", channels,
             " channels");
  const cudaStream_t st = kiln::cuda::raw(s);
  kiln::cuda::DeviceArray<double> mean(channels, st), sq(channels, st);
  kiln::cuda::DeviceArray<float> scale(channels, st), shift(channels, st);
  column_sums(st, rows, channels, Value{x, channels}, StoreMean{mean.get(), rows});
  column_sums(st, rows, channels, SquaredDeviation{x, channels, mean.get()}, StoreDouble{sq.get()});
  kiln::cuda::launch("bn_finalize_kernel", bn_finalize_kernel, dim3(blocks(channels)), dim3(kElementwiseThreads), 0,
                     st, rows, channels, static_cast<const double*>(mean.get()), static_cast<const double*>(sq.get()),
                     gamma, beta, eps, momentum, save_mean, save_inv_std, running_mean, running_var, scale.get(),
                     shift.get());
  kiln::cuda::launch("affine_kernel", affine_kernel, dim3(blocks(rows * channels)), dim3(kElementwiseThreads), 0, st,
                     rows, channels, x, static_cast<const float*>(scale.get()),
                     static_cast<const float*>(shift.get()), y);
}

void batch_norm_forward_inference(const Stream& s, int64_t rows, int64_t channels, const float* x, const float* gamma,
                                  const float* beta, const float* running_mean, const float* running_var, float eps,
                                  float* y) {
  KILN_CHECK(s.device().is_cuda() && rows >= 0 && channels > 0);
  const cudaStream_t st = kiln::cuda::raw(s);
  kiln::cuda::DeviceArray<float> scale(channels, st), shift(channels, st);
  kiln::cuda::launch("bn_inference_consts_kernel", bn_inference_consts_kernel, dim3(blocks(channels)),
                     dim3(kElementwiseThreads), 0, st, channels, gamma, beta, running_mean, running_var, eps,
                     scale.get(), shift.get());
  if (rows == 0) return;
  kiln::cuda::launch("affine_kernel", affine_kernel, dim3(blocks(rows * channels)), dim3(kElementwiseThreads), 0, st,
                     rows, channels, x, static_cast<const float*>(scale.get()),
                     static_cast<const float*>(shift.get()), y);
}

void batch_norm_backward(const Stream& s, int64_t rows, int64_t channels, const float* x, const float* dy,
                         const float* gamma, const float* save_mean, const float* save_inv_std, float* dx,
                         float* dgamma, float* dbeta) {
  KILN_CHECK(s.device().is_cuda() && rows > 0 && channels > 0);
  const cudaStream_t st = kiln::cuda::raw(s);
  kiln::cuda::DeviceArray<double> sum_dy(channels, st), sum_dy_xhat(channels, st);
  kiln::cuda::DeviceArray<float> k1(channels, st), k2(channels, st), k3(channels, st);
  column_sums(st, rows, channels, Value{dy, channels}, StoreDouble{sum_dy.get()});
  column_sums(st, rows, channels, DyXhat{x, dy, channels, save_mean, save_inv_std}, StoreDouble{sum_dy_xhat.get()});
  kiln::cuda::launch("bn_backward_consts_kernel", bn_backward_consts_kernel, dim3(blocks(channels)),
                     dim3(kElementwiseThreads), 0, st, rows, channels, gamma, save_inv_std,
                     static_cast<const double*>(sum_dy.get()), static_cast<const double*>(sum_dy_xhat.get()), k1.get(),
                     k2.get(), k3.get(), dgamma, dbeta);
  kiln::cuda::launch("bn_backward_dx_kernel", bn_backward_dx_kernel, dim3(blocks(rows * channels)),
                     dim3(kElementwiseThreads), 0, st, rows, channels, x, dy, save_mean,
                     static_cast<const float*>(k1.get()), static_cast<const float*>(k2.get()),
                     static_cast<const float*>(k3.get()), dx);
}

}  // namespace kiln::kernels::cuda
