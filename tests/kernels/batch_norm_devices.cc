// kernels/batch_norm.h on every device (tests/kernels/device_test_util.h).
#include "tests/kernels/device_passes.h"

namespace kiln {
namespace {

using test::DeviceRunner;
using test::random_vec;

class BatchNormDevices : public test::DeviceTest {};

TEST_P(BatchNormDevices, TrainingInferenceAndBackward) {
  const int64_t rows = 300, ch = 7;
  const auto x = random_vec<float>(rows * ch, 3, -2.0, 2.0), dy = random_vec<float>(rows * ch, 4);
  const auto gamma = random_vec<float>(ch, 5, 0.5, 1.5), beta = random_vec<float>(ch, 6);
  expect_same_as_cpu([&](DeviceRunner& d) { return test::batch_norm_pass(d, rows, ch, x, dy, gamma, beta, 0.0f, 0.0f); },
                     1e-4);
}

KILN_DEVICE_TEST_SUITE(BatchNormDevices);

}  // namespace
}  // namespace kiln
