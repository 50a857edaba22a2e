// kernels/loss.h on every device (tests/kernels/device_test_util.h).
#include "kernels/loss.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;
using test::random_vec;

class LossDevices : public test::DeviceTest {};

TEST_P(LossDevices, SoftmaxCrossEntropy) {
  const int64_t batch = 64, classes = 10;
  const auto logits = random_vec<float>(batch * classes, 9, -4.0, 4.0);
  std::vector<int32_t> labels(batch);
  for (int64_t b = 0; b < batch; ++b) labels[b] = static_cast<int32_t>((b * 7) % classes);
  expect_same_as_cpu([&](DeviceRunner& d) {
    const int32_t* dl = d.upload(labels);
    float* probs = d.alloc<float>(batch * classes);
    float* losses = d.alloc<float>(batch);
    float* dlogits = d.alloc<float>(batch * classes);
    kernels::softmax_cross_entropy_forward<float>(d.stream(), d.upload(logits), dl, batch, classes, probs, losses);
    kernels::softmax_cross_entropy_backward<float>(d.stream(), probs, dl, batch, classes, 1.0f / batch, dlogits);
    std::vector<double> out = d.download(probs, batch * classes);
    test::append(out, d.download(losses, batch));
    test::append(out, d.download(dlogits, batch * classes));
    return out;
  });
}

TEST_P(LossDevices, ElementwiseLosses) {
  const int64_t n = 777;
  const auto pred = random_vec<float>(n, 10, -3.0, 3.0), target = random_vec<float>(n, 11, 0.0, 1.0);
  expect_same_as_cpu([&](DeviceRunner& d) {
    const Stream s = d.stream();
    const float* p = d.upload(pred);
    const float* t = d.upload(target);
    std::vector<float*> outs;
    for (int i = 0; i < 6; ++i) outs.push_back(d.alloc<float>(n));
    kernels::mse_forward<float>(s, p, t, n, outs[0]);
    kernels::mse_backward<float>(s, p, t, n, 0.5f, outs[1]);
    kernels::huber_forward<float>(s, p, t, n, 1.0f, outs[2]);
    kernels::huber_backward<float>(s, p, t, n, 1.0f, 0.5f, outs[3]);
    kernels::logistic_forward<float>(s, p, t, n, outs[4]);
    kernels::logistic_backward<float>(s, p, t, n, 0.5f, outs[5]);
    std::vector<double> out;
    for (float* o : outs) test::append(out, d.download(o, n));
    return out;
  });
}

KILN_DEVICE_TEST_SUITE(LossDevices);

}  // namespace
}  // namespace kiln
