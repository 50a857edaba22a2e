#include "kernels/cpu/activation.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/act_impl.h"

namespace kiln::kernels::cpu {

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
  // dx[i] = g(u[i], dy[i]) with u the input (relu, leaky, gelu) or the output (sigmoid, tanh):
  // one branch-free loop per activation, each reading only the stream it needs.
  auto run = [&](const T* u, auto g) {
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dx[i] = g(u[i], dy[i]);
    });
  };
  switch (act) {
    case Activation::none: run(dy, [](T, T d) { return d; }); return;
    case Activation::relu: run(x, [](T v, T d) { return v > T(0) ? d : T(0); }); return;
    case Activation::leaky_relu: {
      const T sl = static_cast<T>(slope);
      run(x, [sl](T v, T d) { return d * detail::blend(detail::positive_mask(v), T(1), sl); });
      return;
    }
    case Activation::gelu: {
      // d/dx [x Phi(x)] = Phi(x) + x phi(x).
      run(x, [](T v, T d) {
        constexpr T inv_sqrt2 = static_cast<T>(1.0 / std::numbers::sqrt2);
        constexpr T inv_sqrt2pi = static_cast<T>(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
        const T cdf = T(0.5) * (T(1) + detail::act_erf(v * inv_sqrt2));
        const T pdf = inv_sqrt2pi * detail::act_exp(T(-0.5) * v * v);
        return d * (cdf + v * pdf);
      });
      return;
    }
    case Activation::sigmoid: run(y, [](T out, T d) { return d * out * (T(1) - out); }); return;
    case Activation::tanh: run(y, [](T out, T d) { return d * (T(1) - out * out); }); return;
  }
}

KILN_ACTIVATION_INSTANTIATE(float)
KILN_ACTIVATION_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
