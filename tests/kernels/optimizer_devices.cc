// kernels/optimizer.h on every device (tests/kernels/device_test_util.h).
#include "kernels/optimizer.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;
using test::random_vec;

class OptimizerDevices : public test::DeviceTest {};

TEST_P(OptimizerDevices, DenseUpdates) {
  const int64_t n = 5000;
  const auto p0 = random_vec<float>(n, 35), g = random_vec<float>(n, 36);
  kernels::SgdHyper sgd;
  sgd.momentum = 0.9f, sgd.weight_decay = 1e-3f, sgd.nesterov = true;
  kernels::AdamHyper adam;
  adam.weight_decay = 1e-2f, adam.decoupled_weight_decay = true, adam.step = 3;
  expect_same_as_cpu([&](DeviceRunner& d) {
    const Stream s = d.stream();
    const float* gd = d.upload(g);
    float* p1 = d.upload(p0);
    float* vel = d.upload(std::vector<float>(n, 0.1f));
    float* p2 = d.upload(p0);
    float* m = d.upload(std::vector<float>(n, 0.01f));
    float* v = d.upload(std::vector<float>(n, 0.02f));
    for (int step = 0; step < 2; ++step) {
      kernels::sgd_update<float>(s, n, p1, gd, vel, sgd);
      kernels::adam_update<float>(s, n, p2, gd, m, v, adam);
    }
    std::vector<double> out = d.download(p1, n);
    for (const float* x : {vel, p2, m, v}) test::append(out, d.download(x, n));
    return out;
  });
}

TEST_P(OptimizerDevices, SparseUpdates) {
  const int64_t rows = 20, dim = 6;
  const std::vector<int64_t> ids = {0, 3, 7, 19};
  const int64_t count = static_cast<int64_t>(ids.size());
  const auto table0 = random_vec<float>(rows * dim, 37), grads = random_vec<float>(count * dim, 38);
  kernels::AdamHyper adam;
  adam.step = 2;
  expect_same_as_cpu([&](DeviceRunner& d) {
    const Stream s = d.stream();
    const int64_t* idd = d.upload(ids);
    const float* gd = d.upload(grads);
    float* t1 = d.upload(table0);
    float* acc = d.upload(std::vector<float>(rows * dim, 0.1f));
    float* t2 = d.upload(table0);
    float* m = d.upload(std::vector<float>(rows * dim, 0.0f));
    float* v = d.upload(std::vector<float>(rows * dim, 0.0f));
    kernels::sparse_adagrad_update<float>(s, dim, t1, acc, idd, count, gd, 0.1f, 1e-8f);
    kernels::sparse_adam_update<float>(s, dim, t2, m, v, idd, count, gd, adam);
    std::vector<double> out;
    for (const float* x : {t1, acc, t2, m, v}) test::append(out, d.download(x, rows * dim));
    return out;
  });
}

// The count left on the device by a captured step: the update reads it there, launched for the
// capacity; the rows past the count (a stale id and its row here) must not be touched.
TEST_P(OptimizerDevices, SparseUpdatesReadTheCountFromTheDevice) {
  const int64_t rows = 20, dim = 6;
  const std::vector<int64_t> ids = {0, 3, 7, 19, 5};  // 4 counted, then a stale row
  const int64_t capacity = static_cast<int64_t>(ids.size()), count = 4;
  const auto table0 = random_vec<float>(rows * dim, 37), grads = random_vec<float>(capacity * dim, 38);
  kernels::AdamHyper adam;
  adam.step = 2;
  auto run = [&](DeviceRunner& d, bool on_device) {
    const Stream s = d.stream();
    const int64_t* idd = d.upload(ids);
    const float* gd = d.upload(grads);
    const int64_t* device_count = on_device ? d.upload(std::vector<int64_t>{count}) : nullptr;
    const int64_t n = on_device ? capacity : count;
    float* t1 = d.upload(table0);
    float* acc = d.upload(std::vector<float>(rows * dim, 0.1f));
    float* t2 = d.upload(table0);
    float* m = d.upload(std::vector<float>(rows * dim, 0.0f));
    float* v = d.upload(std::vector<float>(rows * dim, 0.0f));
    kernels::sparse_adagrad_update<float>(s, dim, t1, acc, idd, n, gd, 0.1f, 1e-8f, device_count);
    kernels::sparse_adam_update<float>(s, dim, t2, m, v, idd, n, gd, adam, device_count);
    std::vector<double> out;
    for (const float* x : {t1, acc, t2, m, v}) test::append(out, d.download(x, rows * dim));
    return out;
  };
  DeviceRunner cpu(Device::Kind::cpu), dev(GetParam());
  const std::vector<double> want = run(cpu, false), got = run(dev, true);
  if (on_cuda()) {
    EXPECT_REL_NEAR(got, want, 1e-5);
  } else {
    EXPECT_EQ(got, want);
  }
}

KILN_DEVICE_TEST_SUITE(OptimizerDevices);

}  // namespace
}  // namespace kiln
