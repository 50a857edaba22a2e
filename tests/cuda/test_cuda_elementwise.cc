// Element-wise CUDA kernels against the CPU reference kernels: activations, losses, fused
// softmax + cross-entropy, dropout (the same Philox mask), optimizers, reductions, clipping.
#include <gtest/gtest.h>

#include "core/stream.h"
#include "kernels/activation.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/dropout.h"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/optimizer.h"
#include "kernels/cuda/reduce.h"
#include "kernels/dropout.h"
#include "kernels/loss.h"
#include "kernels/optimizer.h"
#include "kernels/reduce.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using namespace cuda_test;
namespace kc = kernels::cuda;
const Stream kCpu = Stream::cpu();

TEST(CudaActivation, ForwardAndBackwardMatchCpu) {
  KILN_REQUIRE_GPU();
  const int64_t n = 10007;
  const auto x = random_floats(n, 1, -4.0f, 4.0f), dy = random_floats(n, 2);
  for (auto act : test::all_activations()) {
    std::vector<float> y(n), dx(n);
    kernels::activation_forward<float>(kCpu, act, 0.1f, x.data(), y.data(), n);
    kernels::activation_backward<float>(kCpu, act, 0.1f, x.data(), y.data(), dy.data(), dx.data(), n);
    DeviceBuffer<float> gx(x), gy(n), gdy(dy), gdx(n);
    kc::activation_forward(test_stream(), act, 0.1f, gx.get(), gy.get(), n);
    const auto got_y = gy.download();
    EXPECT_LE(rel_error(got_y, y), kTolFp32) << static_cast<int>(act);
    kc::activation_backward(test_stream(), act, 0.1f, gx.get(), gy.get(), gdy.get(), gdx.get(), n);
    EXPECT_LE(rel_error(gdx.download(), dx), kTolFp32) << static_cast<int>(act);
  }
}

TEST(CudaLoss, SoftmaxCrossEntropyMatchesCpu) {
  KILN_REQUIRE_GPU();
  for (int64_t classes : {int64_t{1}, int64_t{10}, int64_t{37}, int64_t{1000}}) {
    const int64_t batch = 53;
    const auto logits = random_floats(batch * classes, classes, -8.0f, 8.0f);
    std::vector<int32_t> labels(batch);
    for (int64_t b = 0; b < batch; ++b) labels[b] = static_cast<int32_t>((b * 7919) % classes);
    std::vector<float> probs(batch * classes), losses(batch), dl(batch * classes);
    kernels::softmax_cross_entropy_forward<float>(kCpu, logits.data(), labels.data(), batch, classes, probs.data(),
                                                  losses.data());
    kernels::softmax_cross_entropy_backward<float>(kCpu, probs.data(), labels.data(), batch, classes, 0.25f,
                                                   dl.data());
    DeviceBuffer<float> gl(logits), gp(batch * classes), gloss(batch), gd(batch * classes);
    DeviceBuffer<int32_t> glab(labels);
    kc::softmax_cross_entropy_forward(test_stream(), gl.get(), glab.get(), batch, classes, gp.get(), gloss.get());
    EXPECT_LE(rel_error(gp.download(), probs), kTolFp32) << classes;
    EXPECT_LE(rel_error(gloss.download(), losses), kTolFp32) << classes;
    kc::softmax_cross_entropy_backward(test_stream(), gp.get(), glab.get(), batch, classes, 0.25f, gd.get());
    EXPECT_LE(rel_error(gd.download(), dl), kTolFp32) << classes;
  }
}

TEST(CudaLoss, PointwiseLossesMatchCpu) {
  KILN_REQUIRE_GPU();
  const int64_t n = 4099;
  const auto pred = random_floats(n, 3, -3.0f, 3.0f), target = random_floats(n, 4, 0.01f, 1.0f);
  DeviceBuffer<float> gp(pred), gt(target), gout(n);
  std::vector<float> want(n);
  auto check = [&](const char* what) {
    EXPECT_LE(rel_error(gout.download(), want), kTolFp32) << what;
    gout.poison();
  };
  kernels::mse_forward<float>(kCpu, pred.data(), target.data(), n, want.data());
  kc::mse_forward(test_stream(), gp.get(), gt.get(), n, gout.get());
  check("mse forward");
  kernels::mse_backward<float>(kCpu, pred.data(), target.data(), n, 0.5f, want.data());
  kc::mse_backward(test_stream(), gp.get(), gt.get(), n, 0.5f, gout.get());
  check("mse backward");
  kernels::huber_forward<float>(kCpu, pred.data(), target.data(), n, 1.0f, want.data());
  kc::huber_forward(test_stream(), gp.get(), gt.get(), n, 1.0f, gout.get());
  check("huber forward");
  kernels::huber_backward<float>(kCpu, pred.data(), target.data(), n, 1.0f, 0.5f, want.data());
  kc::huber_backward(test_stream(), gp.get(), gt.get(), n, 1.0f, 0.5f, gout.get());
  check("huber backward");
  kernels::logistic_forward<float>(kCpu, pred.data(), target.data(), n, want.data());
  kc::logistic_forward(test_stream(), gp.get(), gt.get(), n, gout.get());
  check("logistic forward");
  kernels::logistic_backward<float>(kCpu, pred.data(), target.data(), n, 0.5f, want.data());
  kc::logistic_backward(test_stream(), gp.get(), gt.get(), n, 0.5f, gout.get());
  check("logistic backward");
}

TEST(CudaDropout, SameMaskAsCpu) {
  KILN_REQUIRE_GPU();
  for (float rate : {0.0f, 0.3f, 1.0f})
    for (int64_t first : {int64_t{0}, int64_t{6}}) {
      // The CPU reference runs from stream element 0; the GPU call starts at `first` and must
      // match the CPU's elements [first, first + n).
      const int64_t n = 10003, total = n + first;
      const auto x = random_floats(total, 5), dy = random_floats(n, 6);
      std::vector<float> y(total), dx(n);
      std::vector<uint8_t> mask(total);
      kernels::dropout_forward<float>(kCpu, total, rate, 1234, 7, x.data(), y.data(), mask.data());
      const std::vector<float> x_tail(x.begin() + first, x.end()), y_tail(y.begin() + first, y.end());
      const std::vector<uint8_t> mask_tail(mask.begin() + first, mask.end());
      kernels::dropout_backward<float>(kCpu, n, rate, mask_tail.data(), dy.data(), dx.data());
      DeviceBuffer<float> gx(x_tail), gy(n), gdy(dy), gdx(n);
      DeviceBuffer<uint8_t> gm(n);
      kc::dropout_forward(test_stream(), n, rate, 1234, 7, gx.get(), gy.get(), gm.get(), static_cast<uint64_t>(first));
      EXPECT_EQ(gm.download(), mask_tail) << rate << " first " << first;
      EXPECT_LE(rel_error(gy.download(), y_tail), kTolFp32) << rate;
      kc::dropout_backward(test_stream(), n, rate, gm.get(), gdy.get(), gdx.get());
      EXPECT_LE(rel_error(gdx.download(), dx), kTolFp32) << rate;
    }
}

TEST(CudaOptimizer, DenseUpdatesMatchCpu) {
  KILN_REQUIRE_GPU();
  for (int64_t n : {int64_t{1}, int64_t{4097}}) {
    const auto p0 = random_floats(n, 7), g = random_floats(n, 8), m0 = random_floats(n, 9, -0.1f, 0.1f),
               v0 = random_floats(n, 10, 0.01f, 0.2f);
    for (bool decoupled : {false, true}) {
      kernels::AdamHyper h;
      h.weight_decay = 0.01f;
      h.decoupled_weight_decay = decoupled;
      h.step = 3;
      auto p = p0, m = m0, v = v0;
      kernels::adam_update<float>(kCpu, n, p.data(), g.data(), m.data(), v.data(), h);
      DeviceBuffer<float> gp(p0), gg(g), gm(m0), gv(v0);
      kc::adam_update(test_stream(), n, gp.get(), gg.get(), gm.get(), gv.get(), h);
      EXPECT_LE(rel_error(gp.download(), p), kTolFp32);
      EXPECT_LE(rel_error(gm.download(), m), kTolFp32);
      EXPECT_LE(rel_error(gv.download(), v), kTolFp32);
    }
    for (bool nesterov : {false, true}) {
      kernels::SgdHyper h;
      h.momentum = 0.9f;
      h.weight_decay = 0.001f;
      h.nesterov = nesterov;
      auto p = p0, vel = m0;
      kernels::sgd_update<float>(kCpu, n, p.data(), g.data(), vel.data(), h);
      DeviceBuffer<float> gp(p0), gg(g), gvel(m0);
      kc::sgd_update(test_stream(), n, gp.get(), gg.get(), gvel.get(), h);
      EXPECT_LE(rel_error(gp.download(), p), kTolFp32);
      EXPECT_LE(rel_error(gvel.download(), vel), kTolFp32);
    }
  }
}

TEST(CudaOptimizer, SparseRowUpdatesMatchCpu) {
  KILN_REQUIRE_GPU();
  const int64_t rows = 97, dim = 13, count = 11;
  std::vector<int64_t> ids;
  for (int64_t u = 0; u < count; ++u) ids.push_back(u * 8 + 1);
  const auto table0 = random_floats(rows * dim, 11), acc0 = random_floats(rows * dim, 12, 0.1f, 1.0f),
             grads = random_floats(count * dim, 13);
  auto table = table0, acc = acc0;
  kernels::sparse_adagrad_update<float>(kCpu, dim, table.data(), acc.data(), ids.data(), count, grads.data(), 0.1f,
                                        1e-8f);
  DeviceBuffer<float> gt(table0), ga(acc0), gg(grads);
  DeviceBuffer<int64_t> gi(ids);
  kc::sparse_adagrad_update(test_stream(), dim, gt.get(), ga.get(), gi.get(), count, gg.get(), 0.1f, 1e-8f);
  EXPECT_LE(rel_error(gt.download(), table), kTolFp32);
  EXPECT_LE(rel_error(ga.download(), acc), kTolFp32);

  kernels::AdamHyper h;
  h.step = 2;
  auto t2 = table0, m = acc0, v = acc0;
  kernels::sparse_adam_update<float>(kCpu, dim, t2.data(), m.data(), v.data(), ids.data(), count, grads.data(), h);
  DeviceBuffer<float> gt2(table0), gm(acc0), gv(acc0);
  kc::sparse_adam_update(test_stream(), dim, gt2.get(), gm.get(), gv.get(), gi.get(), count, gg.get(), h);
  EXPECT_LE(rel_error(gt2.download(), t2), kTolFp32);
  EXPECT_LE(rel_error(gm.download(), m), kTolFp32);
  EXPECT_LE(rel_error(gv.download(), v), kTolFp32);
}

TEST(CudaReduce, SumRowsSquaresArgmaxAndClipMatchCpu) {
  KILN_REQUIRE_GPU();
  const int64_t rows = 1337, cols = 37;
  const auto x = random_floats(rows * cols, 14);
  DeviceBuffer<float> gx(x);
  for (bool accumulate : {false, true}) {
    std::vector<float> out = random_floats(cols, 15);
    DeviceBuffer<float> gout(out);
    kernels::sum_rows<float>(kCpu, x.data(), rows, cols, out.data(), accumulate);
    kc::sum_rows(test_stream(), gx.get(), rows, cols, gout.get(), accumulate);
    EXPECT_LE(rel_error(gout.download(), out), kTolFp32);
  }
  const double want_sq = kernels::sum_squares<float>(kCpu, x.data(), rows * cols);
  EXPECT_NEAR(kc::sum_squares(test_stream(), gx.get(), rows * cols), want_sq, 1e-10 * want_sq);

  std::vector<int32_t> labels(rows);
  for (int64_t r = 0; r < rows; ++r) labels[r] = static_cast<int32_t>(r % cols);
  DeviceBuffer<int32_t> gl(labels);
  EXPECT_EQ(kc::count_argmax_matches(test_stream(), gx.get(), gl.get(), rows, cols),
            kernels::count_argmax_matches<float>(kCpu, x.data(), labels.data(), rows, cols));

  // Clipping to half the norm scales by max / norm, as models/optimizer.cc does.
  const double norm = std::sqrt(want_sq);
  auto clipped = x;
  kernels::scale_inplace<float>(kCpu, clipped.data(), rows * cols, static_cast<float>(0.5 * norm / norm));
  DeviceBuffer<double> gnorm(1);
  kc::clip_global_norm(test_stream(), gx.get(), rows * cols, 0.5 * norm, gnorm.get());
  EXPECT_LE(rel_error(gx.download(), clipped), kTolFp32);
  EXPECT_NEAR(gnorm.download()[0], norm, 1e-9 * norm);
  // Under the limit nothing changes.
  const auto before = gx.download();
  kc::clip_global_norm(test_stream(), gx.get(), rows * cols, 10.0 * norm, nullptr);
  EXPECT_EQ(gx.download(), before);
}

// More rows than 65535 chunks of 512 (the grid.y limit the column sums used to hit at 33.5M
// rows: bias gradients and batch norm failed above it). Values are multiples of 1/4, so the
// double reference is exact; each column's sum must match to fp32 rounding.
TEST(CudaReduce, Large) {
  KILN_REQUIRE_GPU();
  const int64_t rows = 65535 * 512 + 1001, cols = 3;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  std::vector<double> want(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float v = static_cast<float>((r * 7 + c * 3) % 13) * 0.25f - 1.0f;
      x[r * cols + c] = v;
      want[c] += v;
    }
  DeviceBuffer<float> gx(x), out(cols);
  kc::sum_rows(test_stream(), gx.get(), rows, cols, out.get(), false);
  EXPECT_TRUE(close_elementwise(out.download(), want, 1e-6));
}

TEST(CudaReduce, SumsAreDeterministic) {
  KILN_REQUIRE_GPU();
  const int64_t rows = 100003, cols = 5;
  DeviceBuffer<float> gx(random_floats(rows * cols, 16));
  DeviceBuffer<float> a(cols), b(cols);
  kc::sum_rows(test_stream(), gx.get(), rows, cols, a.get(), false);
  kc::sum_rows(test_stream(), gx.get(), rows, cols, b.get(), false);
  EXPECT_EQ(a.download(), b.download());
  EXPECT_EQ(kc::sum_squares(test_stream(), gx.get(), rows * cols), kc::sum_squares(test_stream(), gx.get(), rows * cols));
}

}  // namespace
}  // namespace kiln
