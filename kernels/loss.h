#pragma once
// Losses with their gradients. Forward writes one loss per example; the caller averages.
// Backward writes d(mean loss)/d(input) when grad_scale = 1/batch.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

// Fused, numerically stable softmax + cross-entropy over logits [batch, classes] with integer
// labels. probs receives the softmax (needed by backward); losses[b] = -log p[b, label[b]].
// A label outside [0, classes) is a user error (kiln::Error naming the row).
template <typename T>
void softmax_cross_entropy_forward(const Stream& s, const T* logits, const int32_t* labels, int64_t batch,
                                   int64_t classes, T* probs, T* losses);
// dlogits = (probs - onehot(label)) * grad_scale. dlogits may alias probs.
template <typename T>
void softmax_cross_entropy_backward(const Stream& s, const T* probs, const int32_t* labels, int64_t batch,
                                    int64_t classes, T grad_scale, T* dlogits);

// Squared error: loss = (pred - target)^2, grad = 2 (pred - target) * grad_scale.
template <typename T>
void mse_forward(const Stream& s, const T* pred, const T* target, int64_t n, T* losses);
template <typename T>
void mse_backward(const Stream& s, const T* pred, const T* target, int64_t n, T grad_scale, T* dpred);

// Huber: 0.5 e^2 for |e| <= delta, delta (|e| - 0.5 delta) beyond.
template <typename T>
void huber_forward(const Stream& s, const T* pred, const T* target, int64_t n, T delta, T* losses);
template <typename T>
void huber_backward(const Stream& s, const T* pred, const T* target, int64_t n, T delta, T grad_scale, T* dpred);

// Binary logistic loss on logits with targets in [0, 1]:
// loss = max(x, 0) - x t + log(1 + exp(-|x|)), grad = (sigmoid(x) - t) * grad_scale.
template <typename T>
void logistic_forward(const Stream& s, const T* logits, const T* target, int64_t n, T* losses);
template <typename T>
void logistic_backward(const Stream& s, const T* logits, const T* target, int64_t n, T grad_scale, T* dlogits);

}  // namespace kiln::kernels
