// kernels/pooling.h on every device (tests/kernels/device_test_util.h).
#include "kernels/pooling.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;
using test::random_vec;

class PoolingDevices : public test::DeviceTest {};

TEST_P(PoolingDevices, MaxAverageAndGlobal) {
  kernels::Pool2dShape p;
  p.n = 2, p.h = 9, p.w = 8, p.c = 3, p.kh = 3, p.kw = 3, p.stride_h = 2, p.stride_w = 2, p.pad_h = 1, p.pad_w = 1;
  const int64_t nx = p.n * p.h * p.w * p.c, ny = p.n * p.out_h() * p.out_w() * p.c;
  const auto x = random_vec<float>(nx, 25), dy = random_vec<float>(ny, 26), gdy = random_vec<float>(p.n * p.c, 27);
  expect_same_as_cpu([&](DeviceRunner& d) {
    const Stream s = d.stream();
    const float* xd = d.upload(x);
    const float* dyd = d.upload(dy);
    float* y = d.alloc<float>(ny);
    int32_t* argmax = d.alloc<int32_t>(ny);
    float* dx = d.upload(std::vector<float>(nx, 0.0f));
    float* ya = d.alloc<float>(ny);
    float* dxa = d.alloc<float>(nx);
    float* yg = d.alloc<float>(p.n * p.c);
    float* dxg = d.alloc<float>(nx);
    kernels::max_pool2d_forward<float>(s, p, xd, y, argmax);
    kernels::max_pool2d_backward<float>(s, p, dyd, argmax, dx);
    kernels::avg_pool2d_forward<float>(s, p, xd, ya);
    kernels::avg_pool2d_backward<float>(s, p, dyd, dxa);
    kernels::global_avg_pool_forward<float>(s, p.n, p.h * p.w, p.c, xd, yg);
    kernels::global_avg_pool_backward<float>(s, p.n, p.h * p.w, p.c, d.upload(gdy), dxg);
    std::vector<double> out = d.download(y, ny);
    test::append(out, d.download(argmax, ny));
    test::append(out, d.download(dx, nx));
    test::append(out, d.download(ya, ny));
    test::append(out, d.download(dxa, nx));
    test::append(out, d.download(yg, p.n * p.c));
    test::append(out, d.download(dxg, nx));
    return out;
  });
}

KILN_DEVICE_TEST_SUITE(PoolingDevices);

}  // namespace
}  // namespace kiln
