// kernel_library VENDOR (kernels/cuda/vendor.h): cuDNN's convolution, pooling and batch norm
// against Kiln's CUDA kernels, which test_cuda_conv.cc checks against double references. Inputs are rounded to
// TF32 on the host, so both sides multiply the same values and differ only in summation order.
#include <gtest/gtest.h>

#include "core/cuda/stream.h"
#include "core/stream.h"
#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/pooling.h"
#include "kernels/cuda/vendor.h"
#include "tests/cuda/cuda_test_util.h"

namespace kiln {
namespace {

using namespace cuda_test;
namespace kc = kernels::cuda;

TEST(CudaVendor, ConvolutionMatchesKilnKernels) {
  KILN_REQUIRE_GPU();
  if (!kc::have_cudnn()) GTEST_SKIP() << "this build has no cuDNN";
  kernels::Conv2dShape c;
  c.n = 3, c.h = 11, c.w = 9, c.c_in = 8, c.c_out = 16, c.kh = 3, c.kw = 3, c.pad_h = 1, c.pad_w = 1, c.stride_w = 2;
  const int64_t xs = c.n * c.h * c.w * c.c_in, ws = c.kh * c.kw * c.c_in * c.c_out,
                ys = c.n * c.out_h() * c.out_w() * c.c_out;
  auto x = random_floats(xs, 1), w = random_floats(ws, 2), dy = random_floats(ys, 3);
  const auto bias = random_floats(c.c_out, 4), dw0 = random_floats(ws, 5), db0 = random_floats(c.c_out, 6);
  for (auto* v : {&x, &w, &dy}) round_tf32_inplace(*v);
  cuda::CudaStream stream(0);
  const Stream s = stream.view();
  DeviceBuffer<float> xd(x), wd(w), dyd(dy), bd(bias);
  // [0]: Kiln's kernels, [1]: cuDNN.
  DeviceBuffer<float> y0(ys), y1(ys), dx0(xs), dx1(xs), dw_0(dw0), dw_1(dw0), db_0(db0), db_1(db0);
  kc::conv2d_forward<float>(s, c, xd.get(), wd.get(), bd.get(), y0.get(), kernels::Activation::gelu, 0.0f);
  kc::cudnn_conv2d_forward(s, c, xd.get(), wd.get(), bd.get(), y1.get(), kernels::Activation::gelu, 0.0f);
  kc::conv2d_backward_data<float>(s, c, dyd.get(), wd.get(), dx0.get());
  kc::cudnn_conv2d_backward_data(s, c, dyd.get(), wd.get(), dx1.get());
  kc::conv2d_backward_weight<float>(s, c, xd.get(), dyd.get(), dw_0.get(), dyd.get(), db_0.get(), true);
  kc::cudnn_conv2d_backward_weight(s, c, xd.get(), dyd.get(), dw_1.get(), db_1.get(), true);
  EXPECT_LE(rel_error(y1.download(), y0.download()), 1e-5);
  EXPECT_LE(rel_error(dx1.download(), dx0.download()), 1e-5);
  EXPECT_LE(rel_error(dw_1.download(), dw_0.download()), 1e-5);
  EXPECT_LE(rel_error(db_1.download(), db_0.download()), 1e-5);
}

TEST(CudaVendor, BatchNormMatchesKilnKernels) {
  KILN_REQUIRE_GPU();
  if (!kc::have_cudnn()) GTEST_SKIP() << "this build has no cuDNN";
  const int64_t rows = 517, ch = 12;
  const auto x = random_floats(rows * ch, 7, -2.0f, 2.0f), dy = random_floats(rows * ch, 8);
  const auto gamma = random_floats(ch, 9, 0.5f, 1.5f), beta = random_floats(ch, 10);
  const std::vector<float> zeros(ch, 0.0f), ones(ch, 1.0f);
  const Stream s = test_stream();
  DeviceBuffer<float> xd(x), dyd(dy), gd(gamma), bd(beta);
  std::vector<std::vector<float>> out[2];
  for (int vendor = 0; vendor < 2; ++vendor) {
    DeviceBuffer<float> y(rows * ch), mean(ch), inv(ch), rmean(zeros), rvar(ones), yi(rows * ch), dx(rows * ch),
        dgamma(ones), dbeta(zeros);
    if (vendor) {
      kc::cudnn_batch_norm_forward_training(s, rows, ch, xd.get(), gd.get(), bd.get(), 1e-5f, 0.1f, y.get(),
                                            mean.get(), inv.get(), rmean.get(), rvar.get());
      kc::cudnn_batch_norm_forward_inference(s, rows, ch, xd.get(), gd.get(), bd.get(), rmean.get(), rvar.get(), 1e-5f,
                                             yi.get());
      kc::cudnn_batch_norm_backward(s, rows, ch, xd.get(), dyd.get(), gd.get(), mean.get(), inv.get(), dx.get(),
                                    dgamma.get(), dbeta.get());
    } else {
      kc::batch_norm_forward_training(s, rows, ch, xd.get(), gd.get(), bd.get(), 1e-5f, 0.1f, y.get(), mean.get(),
                                      inv.get(), rmean.get(), rvar.get());
      kc::batch_norm_forward_inference(s, rows, ch, xd.get(), gd.get(), bd.get(), rmean.get(), rvar.get(), 1e-5f,
                                       yi.get());
      kc::batch_norm_backward(s, rows, ch, xd.get(), dyd.get(), gd.get(), mean.get(), inv.get(), dx.get(),
                              dgamma.get(), dbeta.get());
    }
    for (const DeviceBuffer<float>* b : {&y, &mean, &inv, &rmean, &rvar, &yi, &dx, &dgamma, &dbeta})
      out[vendor].push_back(b->download());
  }
  for (size_t i = 0; i < out[0].size(); ++i) EXPECT_LE(rel_error(out[1][i], out[0][i]), 1e-5) << "output " << i;
}

TEST(CudaVendor, PoolingMatchesKilnKernels) {
  KILN_REQUIRE_GPU();
  if (!kc::have_cudnn()) GTEST_SKIP() << "this build has no cuDNN";
  // Padding, overlapping windows and ties (a coarse grid of values): the argmax must be the CPU's
  // first maximum, which Kiln's kernel takes.
  kernels::Pool2dShape p;
  p.n = 3, p.h = 9, p.w = 8, p.c = 5, p.kh = 3, p.kw = 3, p.stride_h = 2, p.stride_w = 2, p.pad_h = 1, p.pad_w = 1;
  const int64_t xs = p.n * p.h * p.w * p.c, ys = p.n * p.out_h() * p.out_w() * p.c, hw = p.h * p.w;
  auto x = random_floats(xs, 11);
  for (float& v : x) v = static_cast<float>(static_cast<int>(v * 4.0f)) / 4.0f;
  const auto dy = random_floats(ys, 12), gdy = random_floats(p.n * p.c, 13);
  const Stream s = Stream::cuda(0, nullptr);
  DeviceBuffer<float> xd(x), dyd(dy), gdyd(gdy);
  DeviceBuffer<float> y0(ys), y1(ys), a0(ys), a1(ys), dx0(xs), dx1(xs), g0(p.n * p.c), g1(p.n * p.c), gdx0(xs),
      gdx1(xs);
  DeviceBuffer<int32_t> arg0(ys), arg1(ys);
  kc::max_pool2d_forward(s, p, xd.get(), y0.get(), arg0.get());
  kc::cudnn_max_pool2d_forward(s, p, xd.get(), y1.get(), arg1.get());
  kc::avg_pool2d_forward(s, p, xd.get(), a0.get());
  kc::cudnn_avg_pool2d_forward(s, p, xd.get(), a1.get());
  kc::avg_pool2d_backward(s, p, dyd.get(), dx0.get());
  kc::cudnn_avg_pool2d_backward(s, p, dyd.get(), dx1.get());
  kc::global_avg_pool_forward(s, p.n, hw, p.c, xd.get(), g0.get());
  kc::cudnn_global_avg_pool_forward(s, p.n, hw, p.c, xd.get(), g1.get());
  kc::global_avg_pool_backward(s, p.n, hw, p.c, gdyd.get(), gdx0.get());
  kc::cudnn_global_avg_pool_backward(s, p.n, hw, p.c, gdyd.get(), gdx1.get());
  EXPECT_EQ(y1.download(), y0.download());
  EXPECT_EQ(arg1.download(), arg0.download());
  EXPECT_LE(rel_error(a1.download(), a0.download()), 1e-5);
  EXPECT_LE(rel_error(dx1.download(), dx0.download()), 1e-5);
  EXPECT_LE(rel_error(g1.download(), g0.download()), 1e-5);
  EXPECT_LE(rel_error(gdx1.download(), gdx0.download()), 1e-5);
}

}  // namespace
}  // namespace kiln
