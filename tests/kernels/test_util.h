#pragma once
// Helpers shared by the kernel tests: seeded random inputs, NaN poisoning of outputs (an output
// the kernel forgets to write then fails the comparison) and a relative-error check.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/philox.h"
#include "core/stream.h"
#include "kernels/activation.h"

namespace kiln::test {

inline Stream cpu() { return Stream::cpu(); }

// Uniform in [lo, hi), reproducible per seed.
template <typename T = double>
std::vector<T> random_vec(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  PhiloxGenerator gen(seed, 0x7e57);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(lo + (hi - lo) * gen.uniform());
  return v;
}

template <typename To, typename From>
std::vector<To> cast(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

template <typename T>
std::vector<T> poisoned(size_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

// max_i |got - want| / (|want| + mean |want|): relative where values are large, absolute on the
// scale of the data where a value is near zero by cancellation. NaN counts as infinite error.
template <typename A, typename B>
double max_rel_error(const std::vector<A>& got, const std::vector<B>& want, size_t* worst = nullptr) {
  EXPECT_EQ(got.size(), want.size());
  double scale = 0.0;
  for (auto w : want) scale += std::abs(static_cast<double>(w));
  scale = want.empty() ? 1.0 : std::max(scale / static_cast<double>(want.size()), 1e-300);
  double err = 0.0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    double e = std::abs(g - w) / (std::abs(w) + scale);
    if (std::isnan(e)) e = std::numeric_limits<double>::infinity();
    if (e > err) {
      err = e;
      if (worst) *worst = i;
    }
  }
  return err;
}

#define EXPECT_REL_NEAR(got, want, tol)                                                                               \
  do {                                                                                                                \
    size_t worst_ = 0;                                                                                                \
    const double err_ = ::kiln::test::max_rel_error((got), (want), &worst_);                                          \
    EXPECT_LE(err_, (tol)) << "worst element " << worst_ << ": got " << (got)[worst_] << ", want " << (want)[worst_]; \
  } while (0)

// <a, b> in double.
template <typename A, typename B>
double dot(const std::vector<A>& a, const std::vector<B>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

// Central finite difference of a scalar function f(x) with respect to every x[i].
template <typename F>
std::vector<double> numeric_grad(std::vector<double> x, F f, double h = 1e-6) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double fp = f(x);
    x[i] = keep - h;
    const double fm = f(x);
    x[i] = keep;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

// act(x) in double, written from the definitions.
inline double ref_activation(kernels::Activation act, double slope, double x) {
  using kernels::Activation;
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x > 0 ? x : 0.0;
    case Activation::leaky_relu: return x > 0 ? x : slope * x;
    case Activation::gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Activation::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Activation::tanh: return std::tanh(x);
  }
  return x;
}

inline const std::vector<kernels::Activation>& all_activations() {
  using kernels::Activation;
  static const std::vector<Activation> acts = {Activation::none, Activation::relu,    Activation::leaky_relu,
                                               Activation::gelu, Activation::sigmoid, Activation::tanh};
  return acts;
}

}  // namespace kiln::test
