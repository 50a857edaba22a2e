#include "kernels/cpu/loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"

namespace kiln::kernels::cpu {

namespace {

constexpr int64_t kGrain = 4096;

// Labels are validated up front, on the calling thread: a throw inside an OpenMP region would
// terminate the process instead of reaching the caller.
void check_labels(const int32_t* labels, int64_t batch, int64_t classes) {
  for (int64_t b = 0; b < batch; ++b) {
    if (labels[b] < 0 || labels[b] >= classes)
      fail("softmax cross-entropy: row ", b, " has label ", labels[b], ", outside [0, ", classes, ")");
  }
}

}  // namespace

template <typename T>
void softmax_cross_entropy_forward(const Stream& s, const T* logits, const int32_t* labels, int64_t batch,
                                   int64_t classes, T* probs, T* losses) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(classes > 0);
  check_labels(labels, batch, classes);
  parallel_for(batch, std::max<int64_t>(1, kGrain / classes), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const T* x = logits + r * classes;
      T* p = probs + r * classes;
      const T mx = *std::max_element(x, x + classes);
      // Exponentials in T, their sum in double: the sum is where the rounding accumulates.
      double sum = 0.0;
      for (int64_t c = 0; c < classes; ++c) {
        p[c] = std::exp(x[c] - mx);
        sum += static_cast<double>(p[c]);
      }
      const T inv = static_cast<T>(1.0 / sum);
      for (int64_t c = 0; c < classes; ++c) p[c] *= inv;
      // -log softmax = log(sum) - (x_label - max); exact even when p[label] underflows.
      losses[r] = static_cast<T>(std::log(sum) - static_cast<double>(x[labels[r]] - mx));
    }
  });
}

template <typename T>
void softmax_cross_entropy_backward(const Stream& s, const T* probs, const int32_t* labels, int64_t batch,
                                    int64_t classes, T grad_scale, T* dlogits) {
  KILN_CHECK(s.device().is_cpu());
  check_labels(labels, batch, classes);
  parallel_for(batch, std::max<int64_t>(1, kGrain / std::max<int64_t>(classes, 1)), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const T* p = probs + r * classes;
      T* d = dlogits + r * classes;
      const T p_label = p[labels[r]];  // read before the loop: dlogits may alias probs
      for (int64_t c = 0; c < classes; ++c) d[c] = p[c] * grad_scale;
      d[labels[r]] = (p_label - T(1)) * grad_scale;
    }
  });
}

template <typename T>
void mse_forward(const Stream& s, const T* pred, const T* target, int64_t n, T* losses) {
  KILN_CHECK(s.device().is_cpu());
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T d = pred[i] - target[i];
      losses[i] = d * d;
    }
  });
}

template <typename T>
void mse_backward(const Stream& s, const T* pred, const T* target, int64_t n, T grad_scale, T* dpred) {
  KILN_CHECK(s.device().is_cpu());
  const T k = T(2) * grad_scale;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dpred[i] = (pred[i] - target[i]) * k;
  });
}

template <typename T>
void huber_forward(const Stream& s, const T* pred, const T* target, int64_t n, T delta, T* losses) {
  KILN_CHECK(s.device().is_cpu());
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T a = std::abs(pred[i] - target[i]);
      losses[i] = a <= delta ? T(0.5) * a * a : delta * (a - T(0.5) * delta);
    }
  });
}

template <typename T>
void huber_backward(const Stream& s, const T* pred, const T* target, int64_t n, T delta, T grad_scale, T* dpred) {
  KILN_CHECK(s.device().is_cpu());
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T d = pred[i] - target[i];
      dpred[i] = std::clamp(d, -delta, delta) * grad_scale;
    }
  });
}

template <typename T>
void logistic_forward(const Stream& s, const T* logits, const T* target, int64_t n, T* losses) {
  KILN_CHECK(s.device().is_cpu());
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T x = logits[i];
      losses[i] = std::max(x, T(0)) - x * target[i] + std::log1p(std::exp(-std::abs(x)));
    }
  });
}

template <typename T>
void logistic_backward(const Stream& s, const T* logits, const T* target, int64_t n, T grad_scale, T* dlogits) {
  KILN_CHECK(s.device().is_cpu());
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T x = logits[i];
      // exp of a non-positive argument never overflows.
      const T z = std::exp(-std::abs(x));
      const T sig = x >= T(0) ? T(1) / (T(1) + z) : z / (T(1) + z);
      dlogits[i] = (sig - target[i]) * grad_scale;
    }
  });
}

KILN_LOSS_INSTANTIATE(float)
KILN_LOSS_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
