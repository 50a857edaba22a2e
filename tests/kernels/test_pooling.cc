#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "kernels/pooling.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using kernels::Pool2dShape;
using test::cast;
using test::cpu;
using test::random_vec;

Pool2dShape make(int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                 int64_t pw) {
  Pool2dShape p;
  p.n = n, p.h = h, p.w = w, p.c = c, p.kh = kh, p.kw = kw, p.stride_h = sh, p.stride_w = sw, p.pad_h = ph,
  p.pad_w = pw;
  return p;
}

// 2x2/2 (odd sizes drop the last row/column), overlapping 3x3/2 with padding, asymmetric, and a
// large batch over the parallel grain.
std::vector<Pool2dShape> shapes() {
  return {make(3, 11, 9, 5, 2, 2, 2, 2, 0, 0), make(3, 11, 9, 5, 3, 3, 2, 2, 1, 1), make(2, 7, 10, 3, 2, 3, 1, 2, 1, 1),
          make(64, 14, 14, 8, 2, 2, 2, 2, 0, 0)};
}

int64_t in_size(const Pool2dShape& p) { return p.n * p.h * p.w * p.c; }
int64_t out_size(const Pool2dShape& p) { return p.n * p.out_h() * p.out_w() * p.c; }

// Calls f(out_index, image_offset, in_index_within_image) for every in-bounds window cell, in
// row-major window order.
template <typename F>
void for_each_cell(const Pool2dShape& p, F f) {
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t oy = 0; oy < p.out_h(); ++oy)
      for (int64_t ox = 0; ox < p.out_w(); ++ox)
        for (int64_t c = 0; c < p.c; ++c)
          for (int64_t ky = 0; ky < p.kh; ++ky)
            for (int64_t kx = 0; kx < p.kw; ++kx) {
              const int64_t iy = oy * p.stride_h - p.pad_h + ky, ix = ox * p.stride_w - p.pad_w + kx;
              if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
              f(((n * p.out_h() + oy) * p.out_w() + ox) * p.c + c, n * p.h * p.w * p.c, (iy * p.w + ix) * p.c + c);
            }
}

template <typename T>
void check_max(const Pool2dShape& p) {
  const auto x = cast<T>(random_vec(in_size(p), 71));
  std::vector<double> want(out_size(p), -std::numeric_limits<double>::infinity());
  std::vector<int32_t> want_arg(out_size(p), -1);
  for_each_cell(p, [&](int64_t o, int64_t base, int64_t i) {
    if (x[base + i] > want[o]) {
      want[o] = x[base + i];
      want_arg[o] = static_cast<int32_t>(i);
    }
  });
  auto y = test::poisoned<T>(out_size(p));
  std::vector<int32_t> arg(out_size(p), -99);
  kernels::max_pool2d_forward<T>(cpu(), p, x.data(), y.data(), arg.data());
  EXPECT_REL_NEAR(y, want, 0.0);
  EXPECT_EQ(arg, want_arg);
  // Without argmax (inference) the same maxima.
  auto values = test::poisoned<T>(out_size(p));
  kernels::max_pool2d_forward<T>(cpu(), p, x.data(), values.data(), nullptr);
  EXPECT_EQ(std::memcmp(values.data(), y.data(), y.size() * sizeof(T)), 0);

  const auto dy = random_vec(out_size(p), 72);
  std::vector<double> want_dx(in_size(p), 0.0);
  const int64_t per_image = p.out_h() * p.out_w() * p.c;
  for (int64_t o = 0; o < out_size(p); ++o) want_dx[(o / per_image) * p.h * p.w * p.c + want_arg[o]] += dy[o];
  const auto dyt = cast<T>(dy);
  auto dx = test::poisoned<T>(in_size(p));
  kernels::max_pool2d_backward<T>(cpu(), p, dyt.data(), arg.data(), dx.data());
  EXPECT_REL_NEAR(dx, want_dx, 1e-6);
}

TEST(MaxPool2d, ForwardAndBackward) {
  for (const auto& p : shapes()) {
    check_max<float>(p);
    check_max<double>(p);
  }
}

TEST(MaxPool2d, FirstMaximumWinsTies) {
  const Pool2dShape p = make(1, 2, 2, 1, 2, 2, 2, 2, 0, 0);
  const std::vector<float> x = {1.0f, 3.0f, 3.0f, 2.0f};
  float y = 0;
  int32_t arg = -1;
  kernels::max_pool2d_forward<float>(cpu(), p, x.data(), &y, &arg);
  EXPECT_EQ(y, 3.0f);
  EXPECT_EQ(arg, 1);
}

// The pass without argmax keeps the one with it's rules: a window's first cell seeds the max even
// when it is -inf or NaN, and a later NaN never wins.
TEST(MaxPool2d, ValuesAloneMatchTheArgmaxPass) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const Pool2dShape p = make(1, 2, 8, 2, 2, 2, 2, 2, 0, 0);
  const std::vector<float> x = {-inf, nan, -inf, 1.f, nan, 2.f, 0.f, 0.f, 5.f, nan, 1.f, 1.f, 2.f, 3.f, 4.f, -1.f,
                                1.f,  0.f, 2.f,  nan, 3.f, 3.f, -inf, -inf, 1.f, 2.f, nan, nan, 7.f, 6.f, 0.f, 9.f};
  std::vector<float> with(8), without(8);
  std::vector<int32_t> arg(8);
  kernels::max_pool2d_forward<float>(cpu(), p, x.data(), with.data(), arg.data());
  kernels::max_pool2d_forward<float>(cpu(), p, x.data(), without.data(), nullptr);
  EXPECT_EQ(std::memcmp(with.data(), without.data(), with.size() * sizeof(float)), 0);
}

template <typename T>
void check_avg(const Pool2dShape& p) {
  const auto x = cast<T>(random_vec(in_size(p), 73));
  std::vector<double> want(out_size(p), 0.0), count(out_size(p), 0.0);
  for_each_cell(p, [&](int64_t o, int64_t base, int64_t i) {
    want[o] += x[base + i];
    count[o] += 1;
  });
  for (size_t o = 0; o < want.size(); ++o) want[o] /= count[o];  // padding excluded
  auto y = test::poisoned<T>(out_size(p));
  kernels::avg_pool2d_forward<T>(cpu(), p, x.data(), y.data());
  EXPECT_REL_NEAR(y, want, 1e-6);

  const auto dy = random_vec(out_size(p), 74);
  std::vector<double> want_dx(in_size(p), 0.0);
  for_each_cell(p, [&](int64_t o, int64_t base, int64_t i) { want_dx[base + i] += dy[o] / count[o]; });
  const auto dyt = cast<T>(dy);
  auto dx = test::poisoned<T>(in_size(p));
  kernels::avg_pool2d_backward<T>(cpu(), p, dyt.data(), dx.data());
  EXPECT_REL_NEAR(dx, want_dx, 1e-6);
}

TEST(AvgPool2d, ForwardAndBackward) {
  for (const auto& p : shapes()) {
    check_avg<float>(p);
    check_avg<double>(p);
  }
}

TEST(AvgPool2d, AdjointIdentity) {
  const Pool2dShape p = shapes()[1];
  const auto x = random_vec(in_size(p), 75), dy = random_vec(out_size(p), 76);
  std::vector<double> y(out_size(p)), dx(in_size(p));
  kernels::avg_pool2d_forward<double>(cpu(), p, x.data(), y.data());
  kernels::avg_pool2d_backward<double>(cpu(), p, dy.data(), dx.data());
  EXPECT_NEAR(test::dot(y, dy), test::dot(x, dx), 1e-12);
}

TEST(GlobalAvgPool, ForwardAndBackward) {
  const int64_t n = 5, hw = 77, c = 13;
  const auto x = random_vec(n * hw * c, 77), dy = random_vec(n * c, 78);
  std::vector<double> want(n * c, 0.0), want_dx(n * hw * c);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < hw; ++i)
      for (int64_t ch = 0; ch < c; ++ch) {
        want[b * c + ch] += x[(b * hw + i) * c + ch] / hw;
        want_dx[(b * hw + i) * c + ch] = dy[b * c + ch] / hw;
      }
  auto y = test::poisoned<double>(n * c);
  kernels::global_avg_pool_forward<double>(cpu(), n, hw, c, x.data(), y.data());
  EXPECT_REL_NEAR(y, want, 1e-13);
  auto dx = test::poisoned<double>(n * hw * c);
  kernels::global_avg_pool_backward<double>(cpu(), n, hw, c, dy.data(), dx.data());
  EXPECT_REL_NEAR(dx, want_dx, 1e-13);

  const auto xf = cast<float>(x), dyf = cast<float>(dy);
  auto yf = test::poisoned<float>(n * c);
  kernels::global_avg_pool_forward<float>(cpu(), n, hw, c, xf.data(), yf.data());
  EXPECT_REL_NEAR(yf, want, 1e-5);
  auto dxf = test::poisoned<float>(n * hw * c);
  kernels::global_avg_pool_backward<float>(cpu(), n, hw, c, dyf.data(), dxf.data());
  EXPECT_REL_NEAR(dxf, want_dx, 1e-6);
}

}  // namespace
}  // namespace kiln
