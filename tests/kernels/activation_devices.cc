// kernels/activation.h on every device (tests/kernels/device_test_util.h).
#include "kernels/activation.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;

class ActivationDevices : public test::DeviceTest {};

TEST_P(ActivationDevices, ForwardAndBackward) {
  const int64_t n = 5000;
  const auto x = test::random_vec<float>(n, 1, -3.0, 3.0), dy = test::random_vec<float>(n, 2);
  for (kernels::Activation act : test::all_activations()) {
    SCOPED_TRACE(static_cast<int>(act));
    expect_same_as_cpu([&](DeviceRunner& d) {
      const float* xd = d.upload(x);
      float* y = d.alloc<float>(n);
      float* dx = d.alloc<float>(n);
      kernels::activation_forward<float>(d.stream(), act, 0.1f, xd, y, n);
      kernels::activation_backward<float>(d.stream(), act, 0.1f, xd, y, d.upload(dy), dx, n);
      std::vector<double> out = d.download(y, n);
      test::append(out, d.download(dx, n));
      return out;
    });
  }
}

KILN_DEVICE_TEST_SUITE(ActivationDevices);

}  // namespace
}  // namespace kiln
