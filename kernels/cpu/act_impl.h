#pragma once
// Scalar activation functors shared by the element-wise kernels and the GEMM/convolution
// epilogues. Dispatching once per call to a lambda keeps the inner loops free of a switch, so the
// compiler can vectorise them.
#include <cmath>
#include <numbers>

#include "kernels/activation.h"

namespace kiln::kernels::detail {

// Calls fn(f) with f: T -> T computing act(x).
template <typename T, typename Fn>
void with_activation(Activation act, float slope, Fn&& fn) {
  switch (act) {
    case Activation::none: fn([](T x) { return x; }); return;
    // x < 0 ? 0 : x (not x > 0 ? x : 0) lets NaN through, as PyTorch does.
    case Activation::relu: fn([](T x) { return x < T(0) ? T(0) : x; }); return;
    case Activation::leaky_relu: {
      const T sl = static_cast<T>(slope);
      fn([sl](T x) { return x < T(0) ? x * sl : x; });
      return;
    }
    // The exact erf form, PyTorch's default (not the tanh approximation).
    case Activation::gelu:
      fn([](T x) { return T(0.5) * x * (T(1) + std::erf(x * static_cast<T>(1.0 / std::numbers::sqrt2))); });
      return;
    case Activation::sigmoid: fn([](T x) { return T(1) / (T(1) + std::exp(-x)); }); return;
    case Activation::tanh: fn([](T x) { return std::tanh(x); }); return;
  }
}

}  // namespace kiln::kernels::detail
