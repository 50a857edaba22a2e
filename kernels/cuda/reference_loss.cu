// Reference losses (kernels/cuda/reference.h): the formulas of kernels/cpu/loss.cc, one thread per
// row (softmax cross-entropy forward: the row's exponentials summed in double in class order, as
// the CPU sums them) or per element. A label outside [0, classes) gives NaN, as Kiln's kernel does.
#include <cmath>

#include "core/error.h"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/reference_launch.cuh"

namespace kiln::kernels::cuda::reference {

namespace {

__global__ void ref_softmax_ce_forward(const float* logits, const int32_t* labels, int64_t batch, int64_t classes,
                                       float* probs, float* losses) {
  KILN_GRID_STRIDE(r, batch) {
    const float* x = logits + r * classes;
    float* p = probs + r * classes;
    float mx = x[0];
    for (int64_t c = 1; c < classes; ++c) mx = fmaxf(mx, x[c]);
    double sum = 0.0;
    for (int64_t c = 0; c < classes; ++c) {
      p[c] = expf(x[c] - mx);
      sum += static_cast<double>(p[c]);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t c = 0; c < classes; ++c) p[c] *= inv;
    const int32_t label = labels[r];
    losses[r] = label >= 0 && label < classes ? static_cast<float>(log(sum) - static_cast<double>(x[label] - mx)) : NAN;
  }
}

__global__ void ref_softmax_ce_backward(const float* probs, const int32_t* labels, int64_t batch, int64_t classes,
                                        float grad_scale, float* dlogits) {
  KILN_GRID_STRIDE(i, batch * classes) {
    const int64_t r = i / classes, c = i % classes;
    const int32_t label = labels[r];
    if (label < 0 || label >= classes) {
      dlogits[i] = NAN;
      continue;
    }
    const float p = probs[i];
    dlogits[i] = c == label ? (p - 1.0f) * grad_scale : p * grad_scale;
  }
}

__global__ void ref_mse_forward(const float* pred, const float* target, int64_t n, float* out) {
  KILN_GRID_STRIDE(i, n) {
    const float d = pred[i] - target[i];
    out[i] = d * d;
  }
}
__global__ void ref_mse_backward(const float* pred, const float* target, int64_t n, float grad_scale, float* out) {
  KILN_GRID_STRIDE(i, n) out[i] = (pred[i] - target[i]) * (2.0f * grad_scale);
}
__global__ void ref_huber_forward(const float* pred, const float* target, int64_t n, float delta, float* out) {
  KILN_GRID_STRIDE(i, n) {
    const float a = fabsf(pred[i] - target[i]);
    out[i] = a <= delta ? 0.5f * a * a : delta * (a - 0.5f * delta);
  }
}
__global__ void ref_huber_backward(const float* pred, const float* target, int64_t n, float delta, float grad_scale,
                                   float* out) {
  KILN_GRID_STRIDE(i, n) out[i] = fminf(fmaxf(pred[i] - target[i], -delta), delta) * grad_scale;
}
__global__ void ref_logistic_forward(const float* logits, const float* target, int64_t n, float* out) {
  KILN_GRID_STRIDE(i, n) {
    const float x = logits[i];
    out[i] = fmaxf(x, 0.0f) - x * target[i] + log1pf(expf(-fabsf(x)));
  }
}
__global__ void ref_logistic_backward(const float* logits, const float* target, int64_t n, float grad_scale,
                                      float* out) {
  KILN_GRID_STRIDE(i, n) {
    const float x = logits[i];
    const float z = expf(-fabsf(x));
    const float sig = x >= 0.0f ? 1.0f / (1.0f + z) : z / (1.0f + z);
    out[i] = (sig - target[i]) * grad_scale;
  }
}

void check(const Stream& s) { KILN_CHECK(s.device().is_cuda()); }

}  // namespace

void softmax_cross_entropy_forward(const Stream& s, const float* logits, const int32_t* labels, int64_t batch,
                                   int64_t classes, float* probs, float* losses) {
  check(s);
  KILN_CHECK(classes > 0);
  launch_per_output(s, "ref_softmax_ce_forward", ref_softmax_ce_forward, batch, logits, labels, batch, classes, probs,
                    losses);
}
void softmax_cross_entropy_backward(const Stream& s, const float* probs, const int32_t* labels, int64_t batch,
                                    int64_t classes, float grad_scale, float* dlogits) {
  check(s);
  launch_per_output(s, "ref_softmax_ce_backward", ref_softmax_ce_backward, batch * classes, probs, labels, batch,
                    classes, grad_scale, dlogits);
}
void mse_forward(const Stream& s, const float* pred, const float* target, int64_t n, float* losses) {
  check(s);
  launch_per_output(s, "ref_mse_forward", ref_mse_forward, n, pred, target, n, losses);
}
void mse_backward(const Stream& s, const float* pred, const float* target, int64_t n, float grad_scale, float* dpred) {
  check(s);
  launch_per_output(s, "ref_mse_backward", ref_mse_backward, n, pred, target, n, grad_scale, dpred);
}
void huber_forward(const Stream& s, const float* pred, const float* target, int64_t n, float delta, float* losses) {
  check(s);
  launch_per_output(s, "ref_huber_forward", ref_huber_forward, n, pred, target, n, delta, losses);
}
void huber_backward(const Stream& s, const float* pred, const float* target, int64_t n, float delta, float grad_scale,
                    float* dpred) {
  check(s);
  launch_per_output(s, "ref_huber_backward", ref_huber_backward, n, pred, target, n, delta, grad_scale, dpred);
}
void logistic_forward(const Stream& s, const float* logits, const float* target, int64_t n, float* losses) {
  check(s);
  launch_per_output(s, "ref_logistic_forward", ref_logistic_forward, n, logits, target, n, losses);
}
void logistic_backward(const Stream& s, const float* logits, const float* target, int64_t n, float grad_scale,
                       float* dlogits) {
  check(s);
  launch_per_output(s, "ref_logistic_backward", ref_logistic_backward, n, logits, target, n, grad_scale, dlogits);
}

}  // namespace kiln::kernels::cuda::reference
