#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "kernels/conv.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using kernels::Activation;
using kernels::Conv2dShape;
using test::cast;
using test::cpu;
using test::random_vec;

Conv2dShape make(int64_t n, int64_t h, int64_t w, int64_t ci, int64_t co, int64_t kh, int64_t kw, int64_t sh,
                 int64_t sw, int64_t ph, int64_t pw) {
  Conv2dShape c;
  c.n = n, c.h = h, c.w = w, c.c_in = ci, c.c_out = co, c.kh = kh, c.kw = kw;
  c.stride_h = sh, c.stride_w = sw, c.pad_h = ph, c.pad_w = pw;
  return c;
}

// Odd shapes: strided and padded, 1x1 (the GEMM fast path), unpadded, asymmetric, 1x1 strided,
// a kernel wider than the image (windows clipped on both sides), and shallow layers (depth
// kh*kw*c_in <= 32, the direct path) with channel counts on and off the register block width.
std::vector<Conv2dShape> shapes() {
  return {make(3, 11, 9, 5, 7, 3, 3, 2, 2, 1, 1), make(3, 11, 9, 5, 7, 1, 1, 1, 1, 0, 0),
          make(3, 11, 9, 5, 7, 3, 3, 1, 1, 0, 0), make(2, 11, 9, 4, 6, 2, 3, 1, 2, 1, 0),
          make(2, 7, 8, 3, 5, 1, 1, 2, 3, 0, 0),  make(2, 4, 3, 3, 4, 5, 5, 1, 1, 2, 2),
          make(3, 9, 8, 1, 37, 3, 3, 1, 1, 1, 1), make(2, 10, 7, 3, 32, 3, 3, 2, 1, 1, 0),
          make(2, 6, 5, 2, 71, 2, 2, 1, 1, 1, 1)};
}

std::string describe(const Conv2dShape& c) {
  return str_cat("n", c.n, " ", c.h, "x", c.w, "x", c.c_in, "->", c.c_out, " k", c.kh, "x", c.kw, " s", c.stride_h, ",",
                 c.stride_w, " p", c.pad_h, ",", c.pad_w);
}

int64_t x_size(const Conv2dShape& c) { return c.n * c.h * c.w * c.c_in; }
int64_t w_size(const Conv2dShape& c) { return c.kh * c.kw * c.c_in * c.c_out; }
int64_t y_size(const Conv2dShape& c) { return c.n * c.out_h() * c.out_w() * c.c_out; }

// Calls f(n, oy, ox, ky, kx, x_index_base, y_index_base) for every in-bounds tap; the element
// indices add ci (x) and co (y).
template <typename F>
void for_each_tap(const Conv2dShape& c, F f) {
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t oy = 0; oy < c.out_h(); ++oy)
      for (int64_t ox = 0; ox < c.out_w(); ++ox)
        for (int64_t ky = 0; ky < c.kh; ++ky)
          for (int64_t kx = 0; kx < c.kw; ++kx) {
            const int64_t iy = oy * c.stride_h - c.pad_h + ky, ix = ox * c.stride_w - c.pad_w + kx;
            if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
            f(((n * c.h + iy) * c.w + ix) * c.c_in, ((n * c.out_h() + oy) * c.out_w() + ox) * c.c_out,
              (ky * c.kw + kx) * c.c_in * c.c_out);
          }
}

std::vector<double> ref_forward(const Conv2dShape& c, const std::vector<double>& x, const std::vector<double>& w,
                                const std::vector<double>* bias, Activation act, float slope) {
  std::vector<double> y(y_size(c), 0.0);
  for_each_tap(c, [&](int64_t xb, int64_t yb, int64_t wb) {
    for (int64_t ci = 0; ci < c.c_in; ++ci)
      for (int64_t co = 0; co < c.c_out; ++co) y[yb + co] += x[xb + ci] * w[wb + ci * c.c_out + co];
  });
  for (size_t i = 0; i < y.size(); ++i)
    y[i] = test::ref_activation(act, slope, y[i] + (bias ? (*bias)[i % c.c_out] : 0.0));
  return y;
}

std::vector<double> ref_backward_data(const Conv2dShape& c, const std::vector<double>& dy,
                                      const std::vector<double>& w) {
  std::vector<double> dx(x_size(c), 0.0);
  for_each_tap(c, [&](int64_t xb, int64_t yb, int64_t wb) {
    for (int64_t ci = 0; ci < c.c_in; ++ci)
      for (int64_t co = 0; co < c.c_out; ++co) dx[xb + ci] += dy[yb + co] * w[wb + ci * c.c_out + co];
  });
  return dx;
}

std::vector<double> ref_backward_weight(const Conv2dShape& c, const std::vector<double>& x,
                                        const std::vector<double>& dy) {
  std::vector<double> dw(w_size(c), 0.0);
  for_each_tap(c, [&](int64_t xb, int64_t yb, int64_t wb) {
    for (int64_t ci = 0; ci < c.c_in; ++ci)
      for (int64_t co = 0; co < c.c_out; ++co) dw[wb + ci * c.c_out + co] += x[xb + ci] * dy[yb + co];
  });
  return dw;
}

template <typename T>
void check_forward(const Conv2dShape& c, bool with_bias, Activation act, double tol) {
  const auto x = cast<double>(cast<T>(random_vec(x_size(c), 51))), w = cast<double>(cast<T>(random_vec(w_size(c), 52)));
  const auto bias = cast<double>(cast<T>(random_vec(c.c_out, 53)));
  const auto want = ref_forward(c, x, w, with_bias ? &bias : nullptr, act, 0.1f);
  const auto xt = cast<T>(x), wt = cast<T>(w), bt = cast<T>(bias);
  auto y = test::poisoned<T>(y_size(c));
  kernels::conv2d_forward<T>(cpu(), c, xt.data(), wt.data(), with_bias ? bt.data() : nullptr, y.data(), act, 0.1f);
  EXPECT_REL_NEAR(y, want, tol);
}

TEST(Conv2d, ForwardMatchesReference) {
  for (const auto& c : shapes()) {
    SCOPED_TRACE(describe(c));
    check_forward<float>(c, false, Activation::none, 1e-5);
    check_forward<float>(c, true, Activation::relu, 1e-5);
    check_forward<double>(c, true, Activation::none, 1e-13);
  }
}

TEST(Conv2d, ForwardFusesEveryActivation) {
  const Conv2dShape c = shapes()[0];
  for (Activation act : test::all_activations()) {
    SCOPED_TRACE(static_cast<int>(act));
    check_forward<float>(c, true, act, 1e-5);
    check_forward<double>(c, true, act, 1e-13);
  }
}

template <typename T>
void check_backward(const Conv2dShape& c, double tol) {
  const auto x = cast<double>(cast<T>(random_vec(x_size(c), 54))), w = cast<double>(cast<T>(random_vec(w_size(c), 55)));
  const auto dy = cast<double>(cast<T>(random_vec(y_size(c), 56)));
  const auto xt = cast<T>(x), wt = cast<T>(w), dyt = cast<T>(dy);

  auto dx = test::poisoned<T>(x_size(c));
  kernels::conv2d_backward_data<T>(cpu(), c, dyt.data(), wt.data(), dx.data());
  EXPECT_REL_NEAR(dx, ref_backward_data(c, dy, w), tol);

  auto want_dw = ref_backward_weight(c, x, dy);
  std::vector<double> want_db(c.c_out, 0.0);
  for (size_t i = 0; i < dy.size(); ++i) want_db[i % c.c_out] += dy[i];
  auto dw = test::poisoned<T>(w_size(c)), db = test::poisoned<T>(c.c_out);
  kernels::conv2d_backward_weight<T>(cpu(), c, xt.data(), dyt.data(), dw.data(), db.data(), false);
  EXPECT_REL_NEAR(dw, want_dw, tol);
  EXPECT_REL_NEAR(db, want_db, tol);

  // accumulate = true adds onto what is there.
  const auto dw0 = cast<double>(cast<T>(random_vec(w_size(c), 57))),
             db0 = cast<double>(cast<T>(random_vec(c.c_out, 58)));
  auto dwa = cast<T>(dw0), dba = cast<T>(db0);
  kernels::conv2d_backward_weight<T>(cpu(), c, xt.data(), dyt.data(), dwa.data(), dba.data(), true);
  for (size_t i = 0; i < want_dw.size(); ++i) want_dw[i] += dw0[i];
  for (size_t i = 0; i < want_db.size(); ++i) want_db[i] += db0[i];
  EXPECT_REL_NEAR(dwa, want_dw, tol);
  EXPECT_REL_NEAR(dba, want_db, tol);

  // dbias may be null.
  auto dw_only = test::poisoned<T>(w_size(c));
  kernels::conv2d_backward_weight<T>(cpu(), c, xt.data(), dyt.data(), dw_only.data(), nullptr, false);
  EXPECT_EQ(dw_only, dw);
}

TEST(Conv2d, BackwardMatchesReference) {
  for (const auto& c : shapes()) {
    SCOPED_TRACE(describe(c));
    check_backward<float>(c, 1e-5);
    check_backward<double>(c, 1e-13);
  }
}

TEST(Conv2d, AdjointIdentity) {
  // <conv(x, w), dy> = <x, backward_data(dy, w)> = <w, backward_weight(x, dy)>.
  for (const auto& c : shapes()) {
    SCOPED_TRACE(describe(c));
    const auto x = random_vec(x_size(c), 61), w = random_vec(w_size(c), 62), dy = random_vec(y_size(c), 63);
    std::vector<double> y(y_size(c)), dx(x_size(c)), dw(w_size(c));
    kernels::conv2d_forward<double>(cpu(), c, x.data(), w.data(), nullptr, y.data());
    kernels::conv2d_backward_data<double>(cpu(), c, dy.data(), w.data(), dx.data());
    kernels::conv2d_backward_weight<double>(cpu(), c, x.data(), dy.data(), dw.data(), nullptr, false);
    const double lhs = test::dot(y, dy);
    EXPECT_NEAR(test::dot(x, dx), lhs, 1e-12 * (1 + std::abs(lhs)));
    EXPECT_NEAR(test::dot(w, dw), lhs, 1e-12 * (1 + std::abs(lhs)));
  }
}

TEST(Conv2d, ManyTilesMatchReference) {
  // Enough rows for several threads' chunks, each split into tiles that straddle image
  // boundaries; backward_weight accumulates across tiles and chunks.
  for (const auto& c : {make(6, 17, 15, 32, 5, 3, 3, 1, 1, 1, 1), make(4, 40, 33, 1, 40, 3, 3, 1, 1, 1, 1)}) {
    SCOPED_TRACE(describe(c));
    check_forward<float>(c, true, Activation::relu, 1e-5);
    check_backward<float>(c, 1e-5);
    check_backward<double>(c, 1e-13);
  }
}

void check_deterministic(const Conv2dShape& c) {
  const auto x = cast<float>(random_vec(x_size(c), 64)), w = cast<float>(random_vec(w_size(c), 65));
  const auto dy = cast<float>(random_vec(y_size(c), 66)), b = cast<float>(random_vec(c.c_out, 67));
  auto run = [&] {
    std::vector<float> y(y_size(c)), dx(x_size(c)), dw(w_size(c)), db(c.c_out);
    kernels::conv2d_forward<float>(cpu(), c, x.data(), w.data(), b.data(), y.data(), Activation::relu);
    kernels::conv2d_backward_data<float>(cpu(), c, dy.data(), w.data(), dx.data());
    kernels::conv2d_backward_weight<float>(cpu(), c, x.data(), dy.data(), dw.data(), db.data(), false);
    y.insert(y.end(), dx.begin(), dx.end());
    y.insert(y.end(), dw.begin(), dw.end());
    y.insert(y.end(), db.begin(), db.end());
    return y;
  };
  const auto r1 = run(), r2 = run();
  ASSERT_EQ(r1.size(), r2.size());
  EXPECT_EQ(0, std::memcmp(r1.data(), r2.data(), r1.size() * sizeof(float)));
}

TEST(Conv2d, Deterministic) {
  // The Fashion-MNIST layers (smaller batch): the direct path, then im2col + sgemm.
  for (const Conv2dShape& c : {make(16, 28, 28, 1, 32, 3, 3, 1, 1, 1, 1), make(16, 14, 14, 32, 64, 3, 3, 1, 1, 1, 1)})
    check_deterministic(c);
}

}  // namespace
}  // namespace kiln
