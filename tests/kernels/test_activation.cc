#include <gtest/gtest.h>

#include "kernels/activation.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using kernels::Activation;
using test::cast;
using test::cpu;
using test::random_vec;

constexpr int64_t kN = 10007;  // above the parallel grain, odd
constexpr float kSlope = 0.07f;

TEST(Activation, ForwardMatchesDefinition) {
  const auto x = random_vec(kN, 11, -4.0, 4.0);
  for (Activation act : test::all_activations()) {
    SCOPED_TRACE(static_cast<int>(act));
    const auto xf = cast<float>(x);
    std::vector<double> want(kN);
    for (int64_t i = 0; i < kN; ++i) want[i] = test::ref_activation(act, kSlope, xf[i]);
    auto yf = test::poisoned<float>(kN);
    kernels::activation_forward<float>(cpu(), act, kSlope, xf.data(), yf.data(), kN);
    EXPECT_REL_NEAR(yf, want, 1e-6);

    for (int64_t i = 0; i < kN; ++i) want[i] = test::ref_activation(act, kSlope, x[i]);
    auto yd = test::poisoned<double>(kN);
    kernels::activation_forward<double>(cpu(), act, kSlope, x.data(), yd.data(), kN);
    EXPECT_REL_NEAR(yd, want, 1e-14);

    // In place (y aliases x).
    auto inplace = x;
    kernels::activation_forward<double>(cpu(), act, kSlope, inplace.data(), inplace.data(), kN);
    EXPECT_EQ(inplace, yd);
  }
}

TEST(Activation, BackwardMatchesFiniteDifference) {
  const auto x = random_vec(kN, 12, -4.0, 4.0);
  const auto dy = random_vec(kN, 13);
  const double h = 1e-6;
  for (Activation act : test::all_activations()) {
    SCOPED_TRACE(static_cast<int>(act));
    // Element-wise, so one perturbation of the whole vector gives every partial derivative.
    std::vector<double> xp(x), xm(x), yp(kN), ym(kN), y(kN);
    for (int64_t i = 0; i < kN; ++i) {
      xp[i] += h;
      xm[i] -= h;
    }
    kernels::activation_forward<double>(cpu(), act, kSlope, xp.data(), yp.data(), kN);
    kernels::activation_forward<double>(cpu(), act, kSlope, xm.data(), ym.data(), kN);
    kernels::activation_forward<double>(cpu(), act, kSlope, x.data(), y.data(), kN);
    std::vector<double> want(kN);
    for (int64_t i = 0; i < kN; ++i) want[i] = dy[i] * (yp[i] - ym[i]) / (2 * h);

    auto dx = test::poisoned<double>(kN);
    kernels::activation_backward<double>(cpu(), act, kSlope, x.data(), y.data(), dy.data(), dx.data(), kN);
    EXPECT_REL_NEAR(dx, want, 1e-7);

    // The float path against the double path.
    const auto xf = cast<float>(x), dyf = cast<float>(dy);
    std::vector<float> yf(kN);
    kernels::activation_forward<float>(cpu(), act, kSlope, xf.data(), yf.data(), kN);
    auto dxf = test::poisoned<float>(kN);
    kernels::activation_backward<float>(cpu(), act, kSlope, xf.data(), yf.data(), dyf.data(), dxf.data(), kN);
    EXPECT_REL_NEAR(dxf, dx, 1e-5);

    // dx aliasing dy.
    auto inplace = dy;
    kernels::activation_backward<double>(cpu(), act, kSlope, x.data(), y.data(), inplace.data(), inplace.data(), kN);
    EXPECT_EQ(inplace, dx);
  }
}

TEST(Activation, FloatAccurateAtExtremes) {
  // The f32 path uses its own exp/erf/tanh; check them where they saturate or switch form.
  const std::vector<float> x = {-1000.0f, -88.5f,  -87.0f, -30.0f, -5.0f, -0.1001f, -0.0999f,
                                -1e-3f,   -1e-30f, 0.0f,   1e-30f, 1e-4f, 0.05f,    0.0999f,
                                0.1001f,  0.7f,    3.0f,   9.0f,   40.0f, 88.5f,    1000.0f};
  const int64_t n = static_cast<int64_t>(x.size());
  for (Activation act : {Activation::gelu, Activation::sigmoid, Activation::tanh}) {
    std::vector<float> y(n), dx(n);
    const std::vector<float> ones(n, 1.0f);
    kernels::activation_forward<float>(cpu(), act, 0.0f, x.data(), y.data(), n);
    kernels::activation_backward<float>(cpu(), act, 0.0f, x.data(), y.data(), ones.data(), dx.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double xd = x[i], want = test::ref_activation(act, 0.0, xd);
      // gelu's 1 + erf(x / sqrt2) rounds at 1 in float (so in PyTorch too): the error is absolute.
      const double tol = 2e-6 * std::abs(want) + (act == Activation::gelu ? 2e-7 * std::abs(xd) : 1e-37);
      EXPECT_NEAR(y[i], want, tol) << "act " << static_cast<int>(act) << " x " << xd;
      EXPECT_TRUE(std::isfinite(dx[i])) << "act " << static_cast<int>(act) << " x " << xd;
    }
  }
}

TEST(Activation, GeluIsTheErfForm) {
  // The tanh approximation gives 0.841192 at x = 1; the exact form 0.841345.
  const double x = 1.0;
  double y = 0;
  kernels::activation_forward<double>(cpu(), Activation::gelu, 0.0f, &x, &y, 1);
  EXPECT_NEAR(y, 0.8413447460685429, 1e-15);
}

}  // namespace
}  // namespace kiln
