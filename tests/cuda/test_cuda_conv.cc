// Convolution (implicit GEMM, TF32 and BF16) against a double reference; pooling and batch norm
// against the CPU path. Odd channel counts exercise the element-gather path, multiples of 8 the
// cp.async one. Inputs are rounded on the host to what the tensor cores multiply, so each output
// element is checked to 1e-5 (cuda_test_util.h); the convolutions run on a created stream.
#include <gtest/gtest.h>

#include "core/cuda/stream.h"
#include "core/stream.h"
#include "kernels/batch_norm.h"
#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/pooling.h"
#include "kernels/pooling.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using namespace cuda_test;
namespace kc = kernels::cuda;
using kernels::Conv2dShape;

// Direct convolution in double: forward, data gradient, weight gradient.
struct ConvRef {
  const Conv2dShape& c;
  int64_t oh() const { return c.out_h(); }
  int64_t ow() const { return c.out_w(); }
  // Calls f(n, oy, ox, ky, kx, input index base (n, iy, ix) or -1 when padding).
  template <typename F>
  void taps(F f) const {
    for (int64_t n = 0; n < c.n; ++n)
      for (int64_t oy = 0; oy < oh(); ++oy)
        for (int64_t ox = 0; ox < ow(); ++ox)
          for (int64_t ky = 0; ky < c.kh; ++ky)
            for (int64_t kx = 0; kx < c.kw; ++kx) {
              const int64_t iy = oy * c.stride_h - c.pad_h + ky, ix = ox * c.stride_w - c.pad_w + kx;
              if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
              f(n, oy, ox, ky, kx, ((n * c.h + iy) * c.w + ix) * c.c_in);
            }
  }
  int64_t out_at(int64_t n, int64_t oy, int64_t ox) const { return ((n * oh() + oy) * ow() + ox) * c.c_out; }
  int64_t w_at(int64_t ky, int64_t kx) const { return (ky * c.kw + kx) * c.c_in * c.c_out; }
};

// accumulate: the weight and bias gradients are added to what dw and dbias hold (random values
// here), the path a model takes when several batches' gradients are summed.
void expect_conv(const Conv2dShape& c, bool bf16, uint64_t seed, bool accumulate = false) {
  const ConvRef ref{c};
  const int64_t xs = c.n * c.h * c.w * c.c_in, ws = c.kh * c.kw * c.c_in * c.c_out,
                ys = c.n * c.out_h() * c.out_w() * c.c_out;
  auto x = random_floats(xs, seed), w = random_floats(ws, seed + 1), dy = random_floats(ys, seed + 2),
       bias = random_floats(c.c_out, seed + 3);
  const auto dw0 = random_floats(ws, seed + 4), db0 = random_floats(c.c_out, seed + 5);
  for (auto* v : {&x, &w, &dy}) {
    if (bf16) round_bf16_inplace(*v);
    else round_tf32_inplace(*v);
  }
  std::vector<double> y(ys, 0.0), dx(xs, 0.0), dw(ws, 0.0);
  if (accumulate)
    for (int64_t i = 0; i < ws; ++i) dw[i] = dw0[i];
  ref.taps([&](int64_t n, int64_t oy, int64_t ox, int64_t ky, int64_t kx, int64_t in) {
    const int64_t o = ref.out_at(n, oy, ox), wb = ref.w_at(ky, kx);
    for (int64_t ci = 0; ci < c.c_in; ++ci)
      for (int64_t co = 0; co < c.c_out; ++co) {
        y[o + co] += static_cast<double>(x[in + ci]) * w[wb + ci * c.c_out + co];
        dx[in + ci] += static_cast<double>(dy[o + co]) * w[wb + ci * c.c_out + co];
        dw[wb + ci * c.c_out + co] += static_cast<double>(x[in + ci]) * dy[o + co];
      }
  });
  for (int64_t i = 0; i < ys; ++i) y[i] = test::ref_activation(kernels::Activation::relu, 0.0, y[i] + bias[i % c.c_out]);
  cuda::CudaStream stream(0);
  const Stream s = stream.view();
  DeviceBuffer<float> gy(ys), gdx(xs), gdw(ws), gbias(bias), gdy32(dy), gdb(c.c_out);
  if (accumulate) gdw.upload(dw0), gdb.upload(db0);
  const double tol = bf16 ? kTolBf16 : kTolTf32;
  const char* what = accumulate ? " (accumulate)" : "";
  auto run = [&](auto tag) {
    using E = decltype(tag);
    std::vector<E> hx(xs), hw(ws), hdy(ys);
    for (int64_t i = 0; i < xs; ++i) hx[i] = E(x[i]);
    for (int64_t i = 0; i < ws; ++i) hw[i] = E(w[i]);
    for (int64_t i = 0; i < ys; ++i) hdy[i] = E(dy[i]);
    DeviceBuffer<E> gx(hx), gw(hw), gdy(hdy);
    kc::conv2d_forward<E>(s, c, gx.get(), gw.get(), gbias.get(), gy.get(), kernels::Activation::relu, 0.0f);
    EXPECT_TRUE(close_elementwise(gy.download(), y, tol)) << "forward";
    kc::conv2d_backward_data<E>(s, c, gdy.get(), gw.get(), gdx.get());
    EXPECT_TRUE(close_elementwise(gdx.download(), dx, tol)) << "data grad";
    kc::conv2d_backward_weight<E>(s, c, gx.get(), gdy.get(), gdw.get(), gdy32.get(), gdb.get(), accumulate);
    EXPECT_TRUE(close_elementwise(gdw.download(), dw, tol)) << "weight grad" << what;
    std::vector<double> db(c.c_out, 0.0);
    if (accumulate)
      for (int64_t i = 0; i < c.c_out; ++i) db[i] = db0[i];
    for (int64_t i = 0; i < ys; ++i) db[i % c.c_out] += dy[i];
    EXPECT_TRUE(close_elementwise(gdb.download(), db, kTolFp32)) << "bias grad" << what;
  };
  if (bf16)
    run(__nv_bfloat16{});
  else
    run(float{});
}

std::vector<Conv2dShape> shapes() {
  std::vector<Conv2dShape> out;
  Conv2dShape a;  // odd everything: element-gather path
  a.n = 3, a.h = 11, a.w = 9, a.c_in = 5, a.c_out = 7, a.kh = 3, a.kw = 3, a.stride_h = 2, a.stride_w = 1;
  a.pad_h = 1, a.pad_w = 1;
  out.push_back(a);
  Conv2dShape b;  // aligned channels: cp.async path, Fashion-MNIST-like second layer
  b.n = 4, b.h = 14, b.w = 14, b.c_in = 32, b.c_out = 64, b.kh = 3, b.kw = 3, b.pad_h = 1, b.pad_w = 1;
  out.push_back(b);
  Conv2dShape c;  // first layer: one channel, 5x5, no padding
  c.n = 2, c.h = 28, c.w = 28, c.c_in = 1, c.c_out = 16, c.kh = 5, c.kw = 5;
  out.push_back(c);
  Conv2dShape d;  // 1x1 stride 2
  d.n = 2, d.h = 8, d.w = 8, d.c_in = 16, d.c_out = 24, d.stride_h = 2, d.stride_w = 2;
  out.push_back(d);
  return out;
}

TEST(CudaConv, Tf32MatchesDoubleReference) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (const auto& c : shapes()) expect_conv(c, false, seed += 5);
}

TEST(CudaConv, Bf16MatchesDoubleReference) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 100;
  for (const auto& c : shapes()) expect_conv(c, true, seed += 5);
}

// conv2d_backward_weight(..., accumulate = true): dw += im2col(x)^T dy (the GEMM epilogue with
// beta = 1) and dbias += column sums, on every shape and both precisions.
TEST(CudaConv, BackwardWeightAccumulates) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 200;
  for (const auto& c : shapes()) {
    expect_conv(c, false, seed += 7, true);
    expect_conv(c, true, seed += 7, true);
  }
}

TEST(CudaPooling, MatchesCpu) {
  KILN_REQUIRE_GPU();
  kernels::Pool2dShape p;
  p.n = 3, p.h = 9, p.w = 7, p.c = 5, p.kh = 3, p.kw = 2, p.stride_h = 2, p.stride_w = 2, p.pad_h = 1, p.pad_w = 1;
  const int64_t xs = p.n * p.h * p.w * p.c, ys = p.n * p.out_h() * p.out_w() * p.c;
  const auto x = random_floats(xs, 1), dy = random_floats(ys, 2);
  const Stream cpu = Stream::cpu(), gpu = test_stream();
  std::vector<float> y(ys), dx(xs);
  std::vector<int32_t> arg(ys);
  DeviceBuffer<float> gx(x), gdy(dy), gy(ys), gdx(xs);
  DeviceBuffer<int32_t> garg(ys);
  kernels::max_pool2d_forward<float>(cpu, p, x.data(), y.data(), arg.data());
  kernels::max_pool2d_backward<float>(cpu, p, dy.data(), arg.data(), dx.data());
  kc::max_pool2d_forward(gpu, p, gx.get(), gy.get(), garg.get());
  EXPECT_EQ(garg.download(), arg);
  EXPECT_LE(rel_error(gy.download(), y), kTolFp32);
  kc::max_pool2d_backward(gpu, p, gdy.get(), garg.get(), gdx.get());
  EXPECT_LE(rel_error(gdx.download(), dx), kTolFp32);
  kernels::avg_pool2d_forward<float>(cpu, p, x.data(), y.data());
  kernels::avg_pool2d_backward<float>(cpu, p, dy.data(), dx.data());
  gy.poison(), gdx.poison();
  kc::avg_pool2d_forward(gpu, p, gx.get(), gy.get());
  EXPECT_LE(rel_error(gy.download(), y), kTolFp32);
  kc::avg_pool2d_backward(gpu, p, gdy.get(), gdx.get());
  EXPECT_LE(rel_error(gdx.download(), dx), kTolFp32);
  std::vector<float> gy_want(p.n * p.c), gdx_want(xs);
  DeviceBuffer<float> ggap(p.n * p.c);
  kernels::global_avg_pool_forward<float>(cpu, p.n, p.h * p.w, p.c, x.data(), gy_want.data());
  kc::global_avg_pool_forward(gpu, p.n, p.h * p.w, p.c, gx.get(), ggap.get());
  EXPECT_LE(rel_error(ggap.download(), gy_want), kTolFp32);
  kernels::global_avg_pool_backward<float>(cpu, p.n, p.h * p.w, p.c, gy_want.data(), gdx_want.data());
  gdx.poison();
  kc::global_avg_pool_backward(gpu, p.n, p.h * p.w, p.c, ggap.get(), gdx.get());
  EXPECT_LE(rel_error(gdx.download(), gdx_want), kTolFp32);
}

TEST(CudaBatchNorm, MatchesCpu) {
  KILN_REQUIRE_GPU();
  const int64_t rows = 2051, ch = 13;
  const auto x = random_floats(rows * ch, 3, -2.0f, 3.0f), dy = random_floats(rows * ch, 4),
             gamma = random_floats(ch, 5), beta = random_floats(ch, 6);
  const Stream cpu = Stream::cpu(), gpu = test_stream();
  std::vector<float> y(rows * ch), mean(ch), inv(ch), rm(ch, 0.1f), rv(ch, 1.0f), dx(rows * ch), dg(ch, 0.5f),
      db(ch, 0.25f);
  kernels::batch_norm_forward_training<float>(cpu, rows, ch, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f,
                                              y.data(), mean.data(), inv.data(), rm.data(), rv.data());
  kernels::batch_norm_backward<float>(cpu, rows, ch, x.data(), dy.data(), gamma.data(), mean.data(), inv.data(),
                                      dx.data(), dg.data(), db.data());
  DeviceBuffer<float> gx(x), gdy(dy), gg(gamma), gb(beta), gy(rows * ch), gmean(ch), ginv(ch),
      grm(std::vector<float>(ch, 0.1f)), grv(std::vector<float>(ch, 1.0f)), gdx(rows * ch),
      gdg(std::vector<float>(ch, 0.5f)), gdb(std::vector<float>(ch, 0.25f));
  kc::batch_norm_forward_training(gpu, rows, ch, gx.get(), gg.get(), gb.get(), 1e-5f, 0.1f, gy.get(), gmean.get(),
                                  ginv.get(), grm.get(), grv.get());
  EXPECT_LE(rel_error(gy.download(), y), kTolFp32);
  EXPECT_LE(rel_error(gmean.download(), mean), kTolFp32);
  EXPECT_LE(rel_error(ginv.download(), inv), kTolFp32);
  EXPECT_LE(rel_error(grm.download(), rm), kTolFp32);
  EXPECT_LE(rel_error(grv.download(), rv), kTolFp32);
  kc::batch_norm_backward(gpu, rows, ch, gx.get(), gdy.get(), gg.get(), gmean.get(), ginv.get(), gdx.get(), gdg.get(),
                          gdb.get());
  EXPECT_LE(rel_error(gdx.download(), dx), 1e-4);
  EXPECT_LE(rel_error(gdg.download(), dg), kTolFp32);
  EXPECT_LE(rel_error(gdb.download(), db), kTolFp32);
  std::vector<float> yi(rows * ch);
  kernels::batch_norm_forward_inference<float>(cpu, rows, ch, x.data(), gamma.data(), beta.data(), rm.data(),
                                               rv.data(), 1e-5f, yi.data());
  gy.poison();
  kc::batch_norm_forward_inference(gpu, rows, ch, gx.get(), gg.get(), gb.get(), grm.get(), grv.get(), 1e-5f, gy.get());
  EXPECT_LE(rel_error(gy.download(), yi), kTolFp32);
}

}  // namespace
}  // namespace kiln
