// Device dispatch of kernels/batch_norm.h (kernels/dispatch.h).
#include "kernels/batch_norm.h"

#include "kernels/cpu/batch_norm.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_library.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/vendor.h"
#endif

namespace kiln::kernels {

using detail::sim_arg;

template <typename T>
void batch_norm_forward_training(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* gamma,
                                 const T* beta, T eps, T momentum, T* y, T* save_mean, T* save_inv_std, T* running_mean,
                                 T* running_var) {
  constexpr const char* kOp = "batch_norm_forward_training";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      return cpu::batch_norm_forward_training(s, rows, channels, x, gamma, beta, eps, momentum, y, save_mean,
                                              save_inv_std, running_mean, running_var);
    case Device::Kind::sim: {
      const int64_t n = rows * channels, c = channels;
      return detail::sim_launch(s, [=, x = sim_arg(kOp, "x", x, n), gamma = sim_arg(kOp, "gamma", gamma, c),
                                    beta = sim_arg(kOp, "beta", beta, c), y = sim_arg(kOp, "y", y, n),
                                    save_mean = sim_arg(kOp, "save_mean", save_mean, c),
                                    save_inv_std = sim_arg(kOp, "save_inv_std", save_inv_std, c),
                                    running_mean = sim_arg(kOp, "running_mean", running_mean, c),
                                    running_var = sim_arg(kOp, "running_var", running_var, c)] {
        cpu::batch_norm_forward_training(Stream::cpu(), rows, channels, x.get(), gamma.get(), beta.get(), eps, momentum,
                                         y.get(), save_mean.get(), save_inv_std.get(), running_mean.get(),
                                         running_var.get());
      });
    }
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    use_vendor("batch_norm")
                        ? cuda::cudnn_batch_norm_forward_training(s, rows, channels, x, gamma, beta, eps, momentum, y,
                                                                  save_mean, save_inv_std, running_mean, running_var)
                        : cuda::batch_norm_forward_training(s, rows, channels, x, gamma, beta, eps, momentum, y,
                                                            save_mean, save_inv_std, running_mean, running_var));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void batch_norm_forward_inference(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* gamma,
                                  const T* beta, const T* running_mean, const T* running_var, T eps, T* y) {
  constexpr const char* kOp = "batch_norm_forward_inference";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      return cpu::batch_norm_forward_inference(s, rows, channels, x, gamma, beta, running_mean, running_var, eps, y);
    case Device::Kind::sim: {
      const int64_t n = rows * channels, c = channels;
      return detail::sim_launch(
          s, [=, x = sim_arg(kOp, "x", x, n), gamma = sim_arg(kOp, "gamma", gamma, c),
              beta = sim_arg(kOp, "beta", beta, c), running_mean = sim_arg(kOp, "running_mean", running_mean, c),
              running_var = sim_arg(kOp, "running_var", running_var, c), y = sim_arg(kOp, "y", y, n)] {
            cpu::batch_norm_forward_inference(Stream::cpu(), rows, channels, x.get(), gamma.get(), beta.get(),
                                              running_mean.get(), running_var.get(), eps, y.get());
          });
    }
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    use_vendor("batch_norm")
                        ? cuda::cudnn_batch_norm_forward_inference(s, rows, channels, x, gamma, beta, running_mean,
                                                                   running_var, eps, y)
                        : cuda::batch_norm_forward_inference(s, rows, channels, x, gamma, beta, running_mean,
                                                             running_var, eps, y));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void batch_norm_backward(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* dy, const T* gamma,
                         const T* save_mean, const T* save_inv_std, T* dx, T* dgamma, T* dbeta) {
  constexpr const char* kOp = "batch_norm_backward";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      return cpu::batch_norm_backward(s, rows, channels, x, dy, gamma, save_mean, save_inv_std, dx, dgamma, dbeta);
    case Device::Kind::sim: {
      const int64_t n = rows * channels, c = channels;
      return detail::sim_launch(
          s, [=, x = sim_arg(kOp, "x", x, n), dy = sim_arg(kOp, "dy", dy, n), gamma = sim_arg(kOp, "gamma", gamma, c),
              save_mean = sim_arg(kOp, "save_mean", save_mean, c),
              save_inv_std = sim_arg(kOp, "save_inv_std", save_inv_std, c), dx = sim_arg(kOp, "dx", dx, n),
              dgamma = sim_arg(kOp, "dgamma", dgamma, c), dbeta = sim_arg(kOp, "dbeta", dbeta, c)] {
            cpu::batch_norm_backward(Stream::cpu(), rows, channels, x.get(), dy.get(), gamma.get(), save_mean.get(),
                                     save_inv_std.get(), dx.get(), dgamma.get(), dbeta.get());
          });
    }
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    use_vendor("batch_norm")
                        ? cuda::cudnn_batch_norm_backward(s, rows, channels, x, dy, gamma, save_mean, save_inv_std, dx,
                                                          dgamma, dbeta)
                        : cuda::batch_norm_backward(s, rows, channels, x, dy, gamma, save_mean, save_inv_std, dx,
                                                    dgamma, dbeta));
  }
  detail::unknown_device(kOp, s);
}

KILN_BATCH_NORM_INSTANTIATE(float)
KILN_BATCH_NORM_INSTANTIATE(double)

}  // namespace kiln::kernels
