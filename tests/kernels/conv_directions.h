#pragma once
// A convolution in all three directions on one device, for the op-table tests that check a
// precision or kernel library across forward, backward-data and backward-weight at once.
#include <vector>

#include "kernels/conv.h"
#include "tests/kernels/device_test_util.h"

namespace kiln::test {

// y = conv(x, w) + bias (bias may be empty), dx, dw and db from dy, concatenated: y | dx | dw | db.
inline std::vector<double> conv_all_directions(DeviceRunner& d, const Stream& s, const kernels::Conv2dShape& c,
                                               const std::vector<float>& x, const std::vector<float>& w,
                                               const std::vector<float>& dy, const std::vector<float>& bias = {}) {
  float* y = d.alloc<float>(c.output_elems());
  float* dx = d.alloc<float>(c.input_elems());
  float* dw = d.alloc<float>(c.weight_elems());
  float* db = d.alloc<float>(c.c_out);
  kernels::conv2d_forward<float>(s, c, d.upload(x), d.upload(w), bias.empty() ? nullptr : d.upload(bias), y,
                                 kernels::Activation::none, 0.0f);
  kernels::conv2d_backward_data<float>(s, c, d.upload(dy), d.upload(w), dx);
  kernels::conv2d_backward_weight<float>(s, c, d.upload(x), d.upload(dy), dw, db, false);
  std::vector<double> out = d.download(y, c.output_elems());
  append(out, d.download(dx, c.input_elems()));
  append(out, d.download(dw, c.weight_elems()));
  append(out, d.download(db, c.c_out));
  return out;
}

}  // namespace kiln::test
