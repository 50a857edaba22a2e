// kernels/batch_norm.h on every device (tests/kernels/device_test_util.h).
#include "kernels/batch_norm.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;
using test::random_vec;

class BatchNormDevices : public test::DeviceTest {};

TEST_P(BatchNormDevices, TrainingInferenceAndBackward) {
  const int64_t rows = 300, ch = 7;
  const auto x = random_vec<float>(rows * ch, 3, -2.0, 2.0), dy = random_vec<float>(rows * ch, 4);
  const auto gamma = random_vec<float>(ch, 5, 0.5, 1.5), beta = random_vec<float>(ch, 6);
  expect_same_as_cpu(
      [&](DeviceRunner& d) {
        const Stream s = d.stream();
        const float* dxin = d.upload(x);
        const float* dgam = d.upload(gamma);
        float* y = d.alloc<float>(rows * ch);
        float* mean = d.alloc<float>(ch);
        float* inv = d.alloc<float>(ch);
        float* rmean = d.upload(std::vector<float>(ch, 0.0f));
        float* rvar = d.upload(std::vector<float>(ch, 1.0f));
        kernels::batch_norm_forward_training<float>(s, rows, ch, dxin, dgam, d.upload(beta), 1e-5f, 0.1f, y, mean, inv,
                                                    rmean, rvar);
        float* yi = d.alloc<float>(rows * ch);
        kernels::batch_norm_forward_inference<float>(s, rows, ch, dxin, dgam, d.upload(beta), rmean, rvar, 1e-5f, yi);
        float* dx = d.alloc<float>(rows * ch);
        float* dgamma = d.upload(std::vector<float>(ch, 0.0f));
        float* dbeta = d.upload(std::vector<float>(ch, 0.0f));
        kernels::batch_norm_backward<float>(s, rows, ch, dxin, d.upload(dy), dgam, mean, inv, dx, dgamma, dbeta);
        std::vector<double> out = d.download(y, rows * ch);
        for (auto [p, n] : {std::pair<const float*, int64_t>{mean, ch},
                            {inv, ch},
                            {rmean, ch},
                            {rvar, ch},
                            {yi, rows * ch},
                            {dx, rows * ch},
                            {dgamma, ch},
                            {dbeta, ch}})
          test::append(out, d.download(p, n));
        return out;
      },
      1e-4);
}

KILN_DEVICE_TEST_SUITE(BatchNormDevices);

}  // namespace
}  // namespace kiln
