// kernels/dropout.h on every device (tests/kernels/device_test_util.h).
#include "kernels/dropout.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;

class DropoutDevices : public test::DeviceTest {};

TEST_P(DropoutDevices, ForwardAndBackward) {
  const int64_t n = 3001;
  const auto x = test::random_vec<float>(n, 7), dy = test::random_vec<float>(n, 8);
  expect_same_as_cpu([&](DeviceRunner& d) {
    float* y = d.alloc<float>(n);
    uint8_t* mask = d.alloc<uint8_t>(n);
    float* dx = d.alloc<float>(n);
    kernels::dropout_forward<float>(d.stream(), n, 0.3f, 1234, 7, d.upload(x), y, mask, 5);
    kernels::dropout_backward<float>(d.stream(), n, 0.3f, mask, d.upload(dy), dx);
    std::vector<double> out = d.download(y, n);
    test::append(out, d.download(mask, n));
    test::append(out, d.download(dx, n));
    return out;
  });
}

KILN_DEVICE_TEST_SUITE(DropoutDevices);

}  // namespace
}  // namespace kiln
