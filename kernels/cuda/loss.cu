#include "kernels/cuda/loss.h"

#include <cmath>

#include "core/cuda/launch.cuh"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/elementwise.cuh"

namespace kiln::kernels::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;

__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    softmax_ce_forward_kernel(const float* logits, const int32_t* labels, int64_t batch, int64_t classes, float* probs,
                              float* losses) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= batch) return;  // whole warps leave together
  const float* x = logits + row * classes;
  float* p = probs + row * classes;
  float mx = -INFINITY;
  for (int64_t c = lane; c < classes; c += 32) mx = fmaxf(mx, x[c]);
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  double sum = 0.0;
  for (int64_t c = lane; c < classes; c += 32) {
    const float e = expf(x[c] - mx);
    p[c] = e;
    sum += e;
  }
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t c = lane; c < classes; c += 32) p[c] *= inv;
  if (lane == 0) {
    const int32_t label = labels[row];
    losses[row] = label >= 0 && label < classes ? static_cast<float>(log(sum) - static_cast<double>(x[label] - mx))
                                                : NAN;
  }
}

__global__ void softmax_ce_backward_kernel(const float* probs, const int32_t* labels, int64_t batch, int64_t classes,
                                           float grad_scale, float* dlogits) {
  KILN_GRID_STRIDE(i, batch * classes) {
    const int64_t r = i / classes, c = i % classes;
    const int32_t label = labels[r];
    const float p = probs[i];
    dlogits[i] = label >= 0 && label < classes ? (c == label ? (p - 1.0f) * grad_scale : p * grad_scale) : NAN;
  }
}

__global__ void mse_forward_kernel(const float* pred, const float* target, int64_t n, float* losses) {
  KILN_GRID_STRIDE(i, n) {
    const float d = pred[i] - target[i];
    losses[i] = d * d;
  }
}
__global__ void mse_backward_kernel(const float* pred, const float* target, int64_t n, float k, float* dpred) {
  KILN_GRID_STRIDE(i, n) dpred[i] = (pred[i] - target[i]) * k;
}
__global__ void huber_forward_kernel(const float* pred, const float* target, int64_t n, float delta, float* losses) {
  KILN_GRID_STRIDE(i, n) {
    const float a = fabsf(pred[i] - target[i]);
    losses[i] = a <= delta ? 0.5f * a * a : delta * (a - 0.5f * delta);
  }
}
__global__ void huber_backward_kernel(const float* pred, const float* target, int64_t n, float delta, float scale,
                                      float* dpred) {
  KILN_GRID_STRIDE(i, n) dpred[i] = fminf(fmaxf(pred[i] - target[i], -delta), delta) * scale;
}
__global__ void logistic_forward_kernel(const float* logits, const float* target, int64_t n, float* losses) {
  KILN_GRID_STRIDE(i, n) {
    const float x = logits[i];
    losses[i] = fmaxf(x, 0.0f) - x * target[i] + log1pf(expf(-fabsf(x)));
  }
}
__global__ void logistic_backward_kernel(const float* logits, const float* target, int64_t n, float scale,
                                         float* dlogits) {
  KILN_GRID_STRIDE(i, n) {
    const float x = logits[i];
    const float z = expf(-fabsf(x));
    const float sig = x >= 0.0f ? 1.0f / (1.0f + z) : z / (1.0f + z);
    dlogits[i] = (sig - target[i]) * scale;
  }
}

template <typename... KArgs, typename... Args>
void run(const Stream& s, const char* name, void (*kernel)(KArgs...), int64_t n, Args... args) {
  KILN_CHECK(s.device().is_cuda(), name, " on a ", s.device().to_string(), " stream");
  if (n <= 0) return;
  kiln::cuda::launch(name, kernel, dim3(elementwise_blocks(n)), dim3(kElementwiseThreads), 0, kiln::cuda::raw(s),
                     args...);
}

}  // namespace

void softmax_cross_entropy_forward(const Stream& s, const float* logits, const int32_t* labels, int64_t batch,
                                   int64_t classes, float* probs, float* losses) {
  KILN_CHECK(s.device().is_cuda() && classes > 0 && batch >= 0);
  if (batch == 0) return;
  const int64_t blocks = (batch + kWarpsPerBlock - 1) / kWarpsPerBlock;
  KILN_CHECK(blocks <= INT32_MAX);
  kiln::cuda::launch("softmax_ce_forward_kernel", softmax_ce_forward_kernel, dim3(static_cast<unsigned>(blocks)),
                     dim3(kWarpsPerBlock * 32), 0, kiln::cuda::raw(s), logits, labels, batch, classes, probs, losses);
}

void softmax_cross_entropy_backward(const Stream& s, const float* probs, const int32_t* labels, int64_t batch,
                                    int64_t classes, float grad_scale, float* dlogits) {
  run(s, "softmax_ce_backward_kernel", softmax_ce_backward_kernel, batch * classes, probs, labels, batch, classes,
      grad_scale, dlogits);
}

void mse_forward(const Stream& s, const float* pred, const float* target, int64_t n, float* losses) {
  run(s, "mse_forward_kernel", mse_forward_kernel, n, pred, target, n, losses);
}
void mse_backward(const Stream& s, const float* pred, const float* target, int64_t n, float grad_scale, float* dpred) {
  run(s, "mse_backward_kernel", mse_backward_kernel, n, pred, target, n, 2.0f * grad_scale, dpred);
}
void huber_forward(const Stream& s, const float* pred, const float* target, int64_t n, float delta, float* losses) {
  run(s, "huber_forward_kernel", huber_forward_kernel, n, pred, target, n, delta, losses);
}
void huber_backward(const Stream& s, const float* pred, const float* target, int64_t n, float delta, float grad_scale,
                    float* dpred) {
  run(s, "huber_backward_kernel", huber_backward_kernel, n, pred, target, n, delta, grad_scale, dpred);
}
void logistic_forward(const Stream& s, const float* logits, const float* target, int64_t n, float* losses) {
  run(s, "logistic_forward_kernel", logistic_forward_kernel, n, logits, target, n, losses);
}
void logistic_backward(const Stream& s, const float* logits, const float* target, int64_t n, float grad_scale,
                       float* dlogits) {
  run(s, "logistic_backward_kernel", logistic_backward_kernel, n, logits, target, n, grad_scale, dlogits);
}

}  // namespace kiln::kernels::cuda
