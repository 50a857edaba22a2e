// Batch norm through cuDNN (kernels/cuda/vendor.h): x [rows, channels] is an NHWC tensor of
// `rows` images of 1x1 pixels, so cuDNN's spatial mode takes per-channel statistics over the rows,
// as Kiln's kernels do. cuDNN's conventions match kernels/batch_norm.h: the running variance is
// the unbiased one, updated as (1 - momentum) r + momentum batch; the saved statistics are the
// mean and 1/sqrt(var + eps); the backward pass adds into dgamma and dbeta (beta of 1).
#include "kernels/cuda/vendor.h"

#include "core/error.h"

#if KILN_HAVE_CUDNN
#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/cudnn_handle.cuh"
#endif

namespace kiln::kernels::cuda {

#if KILN_HAVE_CUDNN

namespace {

// x and the per-channel parameters' descriptors.
struct BnDescs {
  CudnnTensor x, param;
  BnDescs(const char* op, int64_t rows, int64_t channels) : x(op, rows, channels, 1, 1) {
    cudnn_int(op, "elements", rows * channels);
    KILN_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(param.get(), x.get(), CUDNN_BATCHNORM_SPATIAL));
  }
};

void check_eps(const char* op, double eps) {
  if (eps < CUDNN_BN_MIN_EPSILON)
    fail(op, " with kernel_library VENDOR: cuDNN needs eps >= ", CUDNN_BN_MIN_EPSILON, ", got ", eps,
         "; set kernel_library KILN for batch_norm");
}

}  // namespace

void cudnn_batch_norm_forward_training(const Stream& s, int64_t rows, int64_t channels, const float* x,
                                       const float* gamma, const float* beta, float eps, float momentum, float* y,
                                       float* save_mean, float* save_inv_std, float* running_mean, float* running_var) {
  constexpr const char* kOp = "batch_norm_forward_training";
  // One row has no unbiased variance: cuDNN rejects it, Kiln's kernel uses the biased one.
  if (rows < 2)
    return batch_norm_forward_training(s, rows, channels, x, gamma, beta, eps, momentum, y, save_mean, save_inv_std,
                                       running_mean, running_var);
  check_eps(kOp, eps);
  CudnnCall call(s);
  const BnDescs d(kOp, rows, channels);
  const float one = 1.0f, zero = 0.0f;
  KILN_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      call.handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x.get(), x, d.x.get(), y, d.param.get(), gamma, beta,
      momentum, running_mean, running_var, eps, save_mean, save_inv_std));
}

void cudnn_batch_norm_forward_inference(const Stream& s, int64_t rows, int64_t channels, const float* x,
                                        const float* gamma, const float* beta, const float* running_mean,
                                        const float* running_var, float eps, float* y) {
  constexpr const char* kOp = "batch_norm_forward_inference";
  if (rows == 0) return;
  check_eps(kOp, eps);
  CudnnCall call(s);
  const BnDescs d(kOp, rows, channels);
  const float one = 1.0f, zero = 0.0f;
  KILN_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(call.handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                           d.x.get(), x, d.x.get(), y, d.param.get(), gamma, beta,
                                                           running_mean, running_var, eps));
}

void cudnn_batch_norm_backward(const Stream& s, int64_t rows, int64_t channels, const float* x, const float* dy,
                               const float* gamma, const float* save_mean, const float* save_inv_std, float* dx,
                               float* dgamma, float* dbeta) {
  constexpr const char* kOp = "batch_norm_backward";
  if (rows < 2)
    return batch_norm_backward(s, rows, channels, x, dy, gamma, save_mean, save_inv_std, dx, dgamma, dbeta);
  CudnnCall call(s);
  const BnDescs d(kOp, rows, channels);
  const float one = 1.0f, zero = 0.0f;
  // The saved statistics are passed, so cuDNN does not recompute them and eps goes unused; it
  // must still be a valid value.
  KILN_CUDNN_CHECK(cudnnBatchNormalizationBackward(call.handle(), CUDNN_BATCHNORM_SPATIAL, &one,
                                                   &zero, &one, &one, d.x.get(), x, d.x.get(), dy, d.x.get(), dx,
                                                   d.param.get(), gamma, dgamma, dbeta, CUDNN_BN_MIN_EPSILON,
                                                   save_mean, save_inv_std));
}

#else

namespace {

[[noreturn]] void no_cudnn(const char* op) {
  fail(op, ": kernel_library VENDOR needs cuDNN, and this build of kiln has none (cudnn.h and libcudnn were not "
           "found when it was configured); set kernel_library KILN for batch_norm");
}

}  // namespace

void cudnn_batch_norm_forward_training(const Stream&, int64_t, int64_t, const float*, const float*, const float*,
                                       float, float, float*, float*, float*, float*, float*) {
  no_cudnn("batch_norm_forward_training");
}
void cudnn_batch_norm_forward_inference(const Stream&, int64_t, int64_t, const float*, const float*, const float*,
                                        const float*, const float*, float, float*) {
  no_cudnn("batch_norm_forward_inference");
}
void cudnn_batch_norm_backward(const Stream&, int64_t, int64_t, const float*, const float*, const float*,
                               const float*, const float*, float*, float*, float*) {
  no_cudnn("batch_norm_backward");
}

#endif

}  // namespace kiln::kernels::cuda
