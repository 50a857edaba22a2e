#pragma once
// Whole forward-and-backward passes of an op family on a DeviceRunner, every output downloaded,
// shared by the family's device tests and the kernel-library tests that run them under VENDOR.
#include <utility>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/conv.h"
#include "tests/kernels/device_test_util.h"

namespace kiln::test {

// Batch-norm training forward, inference forward and backward over [rows, ch]; dgamma and dbeta
// start at `dgamma0` and `dbeta0` (the backward accumulates into them).
inline std::vector<double> batch_norm_pass(DeviceRunner& d, int64_t rows, int64_t ch, const std::vector<float>& x,
                                           const std::vector<float>& dy, const std::vector<float>& gamma,
                                           const std::vector<float>& beta, float dgamma0, float dbeta0) {
  const Stream s = d.stream();
  const float* xd = d.upload(x);
  const float* gd = d.upload(gamma);
  const float* bd = d.upload(beta);
  float* y = d.alloc<float>(rows * ch);
  float* mean = d.alloc<float>(ch);
  float* inv = d.alloc<float>(ch);
  float* rmean = d.upload(std::vector<float>(ch, 0.0f));
  float* rvar = d.upload(std::vector<float>(ch, 1.0f));
  kernels::batch_norm_forward_training<float>(s, rows, ch, xd, gd, bd, 1e-5f, 0.1f, y, mean, inv, rmean, rvar);
  float* yi = d.alloc<float>(rows * ch);
  kernels::batch_norm_forward_inference<float>(s, rows, ch, xd, gd, bd, rmean, rvar, 1e-5f, yi);
  float* dx = d.alloc<float>(rows * ch);
  float* dgamma = d.upload(std::vector<float>(ch, dgamma0));
  float* dbeta = d.upload(std::vector<float>(ch, dbeta0));
  kernels::batch_norm_backward<float>(s, rows, ch, xd, d.upload(dy), gd, mean, inv, dx, dgamma, dbeta);
  std::vector<double> out = d.download(y, rows * ch);
  for (auto [p, n] : {std::pair<const float*, int64_t>{mean, ch},
                      {inv, ch},
                      {rmean, ch},
                      {rvar, ch},
                      {yi, rows * ch},
                      {dx, rows * ch},
                      {dgamma, ch},
                      {dbeta, ch}})
    append(out, d.download(p, n));
  return out;
}

// Convolution forward (bias, leaky ReLU 0.1), backward data and backward weight. With `dw0` and
// `db0` the weight gradients accumulate onto them; empty, they are written afresh.
inline std::vector<double> conv_pass(DeviceRunner& d, const kernels::Conv2dShape& c, const std::vector<float>& x,
                                     const std::vector<float>& w, const std::vector<float>& bias,
                                     const std::vector<float>& dy, const std::vector<float>& dw0 = {},
                                     const std::vector<float>& db0 = {}) {
  const int64_t nx = c.n * c.h * c.w * c.c_in, nw = c.kh * c.kw * c.c_in * c.c_out;
  const int64_t ny = c.n * c.out_h() * c.out_w() * c.c_out;
  const bool accumulate = !dw0.empty();
  const Stream s = d.stream();
  const float* xd = d.upload(x);
  const float* wd = d.upload(w);
  float* y = d.alloc<float>(ny);
  float* dx = d.alloc<float>(nx);
  float* dw = accumulate ? d.upload(dw0) : d.alloc<float>(nw);
  float* dbias = accumulate ? d.upload(db0) : d.alloc<float>(c.c_out);
  kernels::conv2d_forward<float>(s, c, xd, wd, d.upload(bias), y, kernels::Activation::leaky_relu, 0.1f);
  const float* dyd = d.upload(dy);
  kernels::conv2d_backward_data<float>(s, c, dyd, wd, dx);
  kernels::conv2d_backward_weight<float>(s, c, xd, dyd, dw, dbias, accumulate);
  std::vector<double> out = d.download(y, ny);
  append(out, d.download(dx, nx));
  append(out, d.download(dw, nw));
  append(out, d.download(dbias, c.c_out));
  return out;
}

}  // namespace kiln::test
