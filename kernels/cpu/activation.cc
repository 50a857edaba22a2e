#include "kernels/activation.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/act_impl.h"

namespace kiln::kernels {

namespace {
constexpr int64_t kGrain = 4096;
}

template <typename T>
void activation_forward(const Stream& s, Activation act, float slope, const T* x, T* y, int64_t n) {
  KILN_CHECK(s.device().is_cpu());
  detail::with_activation<T>(act, slope, [&](auto f) {
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
    });
  });
}

template <typename T>
void activation_backward(const Stream& s, Activation act, float slope, const T* x, const T* y, const T* dy, T* dx,
                         int64_t n) {
  KILN_CHECK(s.device().is_cpu());
  // Each case is its own loop so the body stays branch-free per element.
  auto run = [&](auto g) {
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dx[i] = g(i);
    });
  };
  switch (act) {
    case Activation::none: run([&](int64_t i) { return dy[i]; }); return;
    case Activation::relu: run([&](int64_t i) { return x[i] > T(0) ? dy[i] : T(0); }); return;
    case Activation::leaky_relu: {
      const T sl = static_cast<T>(slope);
      run([&](int64_t i) { return x[i] > T(0) ? dy[i] : dy[i] * sl; });
      return;
    }
    case Activation::gelu: {
      // d/dx [x Phi(x)] = Phi(x) + x phi(x).
      const T inv_sqrt2 = static_cast<T>(1.0 / std::numbers::sqrt2);
      const T inv_sqrt2pi = static_cast<T>(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
      run([&](int64_t i) {
        T v = x[i];
        T cdf = T(0.5) * (T(1) + std::erf(v * inv_sqrt2));
        T pdf = inv_sqrt2pi * std::exp(T(-0.5) * v * v);
        return dy[i] * (cdf + v * pdf);
      });
      return;
    }
    case Activation::sigmoid: run([&](int64_t i) { return dy[i] * y[i] * (T(1) - y[i]); }); return;
    case Activation::tanh: run([&](int64_t i) { return dy[i] * (T(1) - y[i] * y[i]); }); return;
  }
}

#define KILN_INSTANTIATE(T)                                                                              \
  template void activation_forward<T>(const Stream&, Activation, float, const T*, T*, int64_t);          \
  template void activation_backward<T>(const Stream&, Activation, float, const T*, const T*, const T*, T*, \
                                       int64_t);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::kernels
