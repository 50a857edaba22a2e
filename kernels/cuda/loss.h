#pragma once
// Losses on the GPU (the CPU set: kernels/loss.h), fp32. A label outside [0, classes) makes that
// row's loss NaN (the CPU path raises kiln::Error; a kernel cannot, and a NaN loss is loud).
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels::cuda {

// One warp per row: max, exp, sum in double, normalise; losses[b] = log(sum) - (x_label - max).
void softmax_cross_entropy_forward(const Stream& s, const float* logits, const int32_t* labels, int64_t batch,
                                   int64_t classes, float* probs, float* losses);
// dlogits = (probs - onehot(label)) * grad_scale; dlogits may alias probs.
void softmax_cross_entropy_backward(const Stream& s, const float* probs, const int32_t* labels, int64_t batch,
                                    int64_t classes, float grad_scale, float* dlogits);

void mse_forward(const Stream& s, const float* pred, const float* target, int64_t n, float* losses);
void mse_backward(const Stream& s, const float* pred, const float* target, int64_t n, float grad_scale, float* dpred);
void huber_forward(const Stream& s, const float* pred, const float* target, int64_t n, float delta, float* losses);
void huber_backward(const Stream& s, const float* pred, const float* target, int64_t n, float delta, float grad_scale,
                    float* dpred);
void logistic_forward(const Stream& s, const float* logits, const float* target, int64_t n, float* losses);
void logistic_backward(const Stream& s, const float* logits, const float* target, int64_t n, float grad_scale,
                       float* dlogits);

}  // namespace kiln::kernels::cuda
