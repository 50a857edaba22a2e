// kernels/conv.h on every device (tests/kernels/device_test_util.h).
#include "kernels/conv.h"
#include "tests/kernels/device_passes.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;
using test::random_vec;

class ConvDevices : public test::DeviceTest {};

kernels::Conv2dShape shape() {
  kernels::Conv2dShape c;
  c.n = 2, c.h = 7, c.w = 6, c.c_in = 3, c.c_out = 5, c.kh = 3, c.kw = 3, c.pad_h = 1, c.pad_w = 1, c.stride_w = 2;
  return c;
}

TEST_P(ConvDevices, ForwardAndBackward) {
  const kernels::Conv2dShape c = shape();
  const int64_t nx = c.n * c.h * c.w * c.c_in, nw = c.kh * c.kw * c.c_in * c.c_out;
  const int64_t ny = c.n * c.out_h() * c.out_w() * c.c_out;
  const auto x = random_vec<float>(nx, 19), w = random_vec<float>(nw, 20), bias = random_vec<float>(c.c_out, 21);
  const auto dy = random_vec<float>(ny, 22);
  expect_same_as_cpu([&](DeviceRunner& d) { return test::conv_pass(d, c, x, w, bias, dy); }, 1e-2);
}

TEST_P(ConvDevices, RowInvariantForward) {
  const kernels::Conv2dShape c = shape();
  const auto x = random_vec<float>(c.n * c.h * c.w * c.c_in, 23),
             w = random_vec<float>(c.kh * c.kw * c.c_in * c.c_out, 24);
  const int64_t ny = c.n * c.out_h() * c.out_w() * c.c_out;
  auto run = [&](DeviceRunner& d) {
    float* y = d.alloc<float>(ny);
    kernels::conv2d_forward<float>(d.stream(), c, d.upload(x), d.upload(w), nullptr, y, kernels::Activation::none, 0.0f,
                                   /*row_invariant=*/true);
    return d.download(y, ny);
  };
  expect_same_as_cpu(run, 1e-2);
}

// On every device, an image's output does not depend on the batch it is in (evaluation, export and
// every served batch size agree bit for bit).
TEST_P(ConvDevices, RowInvariantAcrossBatchSizes) {
  kernels::Conv2dShape c = shape();
  const auto x = random_vec<float>(c.n * c.h * c.w * c.c_in, 25),
             w = random_vec<float>(c.kh * c.kw * c.c_in * c.c_out, 26);
  const int64_t per_image = c.out_h() * c.out_w() * c.c_out;
  DeviceRunner d(GetParam());
  float* all = d.alloc<float>(c.n * per_image);
  const float* dx = d.upload(x);
  const float* dw = d.upload(w);
  kernels::conv2d_forward<float>(d.stream(), c, dx, dw, nullptr, all, kernels::Activation::none, 0.0f, true);
  const std::vector<double> batched = d.download(all, c.n * per_image);
  kernels::Conv2dShape one = c;
  one.n = 1;
  for (int64_t i = 0; i < c.n; ++i) {
    float* y = d.alloc<float>(per_image);
    kernels::conv2d_forward<float>(d.stream(), one, dx + i * c.h * c.w * c.c_in, dw, nullptr, y,
                                   kernels::Activation::none, 0.0f, true);
    const std::vector<double> alone = d.download(y, per_image);
    for (int64_t j = 0; j < per_image; ++j)
      ASSERT_EQ(alone[j], batched[i * per_image + j]) << "image " << i << " element " << j;
  }
}

KILN_DEVICE_TEST_SUITE(ConvDevices);

}  // namespace
}  // namespace kiln
