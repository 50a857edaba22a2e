// Reference softmax cross-entropy (kernels/cuda/reference.h): kernels/cpu/loss.cc's formulas, the
// forward one thread per row (the row's exponentials summed in double in class order, as the CPU
// sums them), the backward per element. A label outside [0, classes) gives NaN, as Kiln's kernel
// does.
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
}  // namespace kiln::kernels::cuda::reference
