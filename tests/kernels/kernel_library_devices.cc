// kernel_library VENDOR on every device (tests/kernels/device_test_util.h): on cpu and sim it
// changes nothing (the same bits as Kiln's kernels); on CUDA the vendor paths (cuBLASLt GEMM,
// cuDNN convolution and batch norm) agree with the CPU within the TF32 tolerance, and every other
// family (the reference kernels of kernels/cuda/reference.h, or Kiln's kernels where they are
// already in that form) within the tolerance of that family's own device tests (embedding: the
// CPU's bits).
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/conv.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/kernel_library.h"
#include "kernels/loss.h"
#include "kernels/optimizer.h"
#include "kernels/pooling.h"
#include "kernels/reduce.h"
#include "tests/kernels/device_passes.h"
#include "tests/kernels/conv_directions.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;
using test::random_vec;

class KernelLibraryDevices : public test::DeviceTest {
 protected:
  void TearDown() override { kernels::reset_kernel_library(); }

  // run() on the CPU with Kiln's kernels, then on this device with VENDOR everywhere.
  void expect_vendor_same_as_kiln_cpu(const std::function<std::vector<double>(DeviceRunner&)>& run, double cuda_tol) {
    kernels::reset_kernel_library();
    DeviceRunner ref(Device::Kind::cpu);
    const std::vector<double> want = run(ref);
    kernels::set_kernel_library(kernels::KernelLibrary::vendor);
    DeviceRunner dev(GetParam());
    const std::vector<double> got = run(dev);
    ASSERT_EQ(got.size(), want.size());
    if (on_cuda()) {
      EXPECT_REL_NEAR(got, want, cuda_tol);
      return;
    }
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(double)), 0) << "output " << i << ": " << got[i] << " vs " << want[i];
  }
};

TEST_P(KernelLibraryDevices, Gemm) {
  const int64_t m = 37, n = 29, k = 41;
  const auto a = random_vec<float>(k * m, 1), b = random_vec<float>(n * k, 2), c0 = random_vec<float>(m * n, 3),
             bias = random_vec<float>(n, 4);
  expect_vendor_same_as_kiln_cpu(
      [&](DeviceRunner& d) {
        float* c = d.upload(c0);
        // A transposed, B transposed, accumulating into C, with the fused epilogue.
        kernels::gemm<float>(d.stream(), true, true, m, n, k, 0.5f, d.upload(a), m, d.upload(b), k, 1.0f, c, n,
                             d.upload(bias), kernels::Activation::relu, 0.0f);
        return d.download(c, m * n);
      },
      1e-2);
}

TEST_P(KernelLibraryDevices, Convolution) {
  kernels::Conv2dShape c;
  c.n = 2, c.h = 9, c.w = 7, c.c_in = 5, c.c_out = 6, c.kh = 3, c.kw = 2, c.pad_h = 1, c.pad_w = 1, c.stride_h = 2;
  const int64_t nx = c.n * c.h * c.w * c.c_in, nw = c.kh * c.kw * c.c_in * c.c_out;
  const int64_t ny = c.n * c.out_h() * c.out_w() * c.c_out;
  const auto x = random_vec<float>(nx, 5), w = random_vec<float>(nw, 6), bias = random_vec<float>(c.c_out, 7),
             dy = random_vec<float>(ny, 8), dw0 = random_vec<float>(nw, 9), db0 = random_vec<float>(c.c_out, 10);
  // The weight gradients accumulate onto dw0 and db0.
  expect_vendor_same_as_kiln_cpu([&](DeviceRunner& d) { return test::conv_pass(d, c, x, w, bias, dy, dw0, db0); }, 1e-2);
}

// The row-invariant (inference) GEMM and convolution under VENDOR: the reference kernels on CUDA
// (kernels/cuda_route.h), at the stream's default precision (TF32 there), and a row's answer the
// same bits in a batch of 5 as in a batch of 37, on every device.
TEST_P(KernelLibraryDevices, RowInvariantGemmAndConvolutionUnderVendor) {
  const int64_t m = 37, few = 5, n = 29, k = 41;
  const auto a = random_vec<float>(m * k, 31), b = random_vec<float>(k * n, 32), bias = random_vec<float>(n, 33);
  kernels::Conv2dShape c;
  c.n = 6, c.h = 9, c.w = 7, c.c_in = 5, c.c_out = 6, c.kh = 3, c.kw = 2, c.pad_h = 1, c.pad_w = 1, c.stride_h = 2;
  const int64_t nx = c.n * c.h * c.w * c.c_in, nw = c.kh * c.kw * c.c_in * c.c_out;
  const int64_t ny = c.n * c.out_h() * c.out_w() * c.c_out, per_image = ny / c.n;
  const auto x = random_vec<float>(nx, 34), w = random_vec<float>(nw, 35), cbias = random_vec<float>(c.c_out, 36);
  // Outputs of the full batch, then of the first `few` rows (the first image) alone.
  auto run = [&](DeviceRunner& d) {
    const float* ad = d.upload(a);
    const float* bd = d.upload(b);
    float* g = d.alloc<float>(m * n);
    float* g_few = d.alloc<float>(few * n);
    kernels::gemm_row_invariant<float>(d.stream(), m, n, k, ad, k, bd, n, g, n, d.upload(bias),
                                       kernels::Activation::gelu, 0.0f);
    kernels::gemm_row_invariant<float>(d.stream(), few, n, k, ad, k, bd, n, g_few, n, d.upload(bias),
                                       kernels::Activation::gelu, 0.0f);
    kernels::Conv2dShape one = c;
    one.n = 1;
    float* y = d.alloc<float>(ny);
    float* y_one = d.alloc<float>(per_image);
    const float* xd = d.upload(x);
    const float* wd = d.upload(w);
    kernels::conv2d_forward<float>(d.stream(), c, xd, wd, d.upload(cbias), y, kernels::Activation::relu, 0.0f, true);
    kernels::conv2d_forward<float>(d.stream(), one, xd, wd, d.upload(cbias), y_one, kernels::Activation::relu, 0.0f,
                                   true);
    std::vector<double> out = d.download(g, m * n);
    test::append(out, d.download(g_few, few * n));
    test::append(out, d.download(y, ny));
    test::append(out, d.download(y_one, per_image));
    return out;
  };
  expect_vendor_same_as_kiln_cpu(run, 1e-2);
  kernels::set_kernel_library(kernels::KernelLibrary::vendor);
  DeviceRunner dev(GetParam());
  const std::vector<double> out = run(dev);
  const size_t g_few = static_cast<size_t>(m * n), y_all = g_few + static_cast<size_t>(few * n);
  const size_t y_one = y_all + static_cast<size_t>(ny);
  for (size_t i = 0; i < static_cast<size_t>(few * n); ++i)
    ASSERT_EQ(std::memcmp(&out[i], &out[g_few + i], sizeof(double)), 0) << "GEMM element " << i;
  for (size_t i = 0; i < static_cast<size_t>(per_image); ++i)
    ASSERT_EQ(std::memcmp(&out[y_all + i], &out[y_one + i], sizeof(double)), 0) << "convolution element " << i;
}

// BF16 under VENDOR: cuBLASLt with bf16 inputs and cuDNN on operands rounded to bf16 on CUDA;
// the CPU emulates the rounding, so both compute exact products summed in fp32 (1e-5).
TEST_P(KernelLibraryDevices, Bf16GemmAndConvolutionUnderVendor) {
  const int64_t m = 37, n = 29, k = 41;
  const auto a = random_vec<float>(m * k, 41), b = random_vec<float>(k * n, 42), c0 = random_vec<float>(m * n, 43),
             bias = random_vec<float>(n, 44);
  kernels::Conv2dShape c;
  c.n = 2, c.h = 9, c.w = 7, c.c_in = 5, c.c_out = 6, c.kh = 3, c.kw = 2, c.pad_h = 1, c.pad_w = 1, c.stride_h = 2;
  const auto x = random_vec<float>(c.input_elems(), 45), w = random_vec<float>(c.weight_elems(), 46),
             dy = random_vec<float>(c.output_elems(), 47);
  expect_vendor_same_as_kiln_cpu(
      [&](DeviceRunner& d) {
        const Stream s = d.stream().with_precision(MathPrecision::bf16);
        float* g = d.upload(c0);
        kernels::gemm<float>(s, false, true, m, n, k, 0.5f, d.upload(a), k, d.upload(b), k, 1.0f, g, n, d.upload(bias),
                             kernels::Activation::relu, 0.0f);
        std::vector<double> out = d.download(g, m * n);
        test::append(out, test::conv_all_directions(d, s, c, x, w, dy));
        return out;
      },
      1e-5);
}

TEST_P(KernelLibraryDevices, BatchNorm) {
  const int64_t rows = 300, ch = 7;
  const auto x = random_vec<float>(rows * ch, 11, -2.0, 2.0), dy = random_vec<float>(rows * ch, 12);
  const auto gamma = random_vec<float>(ch, 13, 0.5, 1.5), beta = random_vec<float>(ch, 14);
  // dgamma and dbeta accumulate onto nonzero values.
  expect_vendor_same_as_kiln_cpu(
      [&](DeviceRunner& d) { return test::batch_norm_pass(d, rows, ch, x, dy, gamma, beta, 0.25f, -0.5f); }, 1e-4);
}

TEST_P(KernelLibraryDevices, PoolingUnderVendor) {
  // Padding, overlapping windows (max backward sums several outputs into one input), a window
  // partly in the padding, and ties (values rounded to a coarse grid) for the argmax order.
  kernels::Pool2dShape p;
  p.n = 2, p.h = 7, p.w = 6, p.c = 3, p.kh = 3, p.kw = 2, p.stride_h = 2, p.stride_w = 1, p.pad_h = 1, p.pad_w = 1;
  const int64_t nx = p.n * p.h * p.w * p.c, ny = p.n * p.out_h() * p.out_w() * p.c;
  std::vector<float> x = random_vec<float>(nx, 21);
  for (float& v : x) v = static_cast<float>(static_cast<int>(v * 4.0f)) / 4.0f;
  const auto dy = random_vec<float>(ny, 22);
  const int64_t hw = p.h * p.w;
  expect_vendor_same_as_kiln_cpu(
      [&](DeviceRunner& d) {
        const Stream s = d.stream();
        const float* xd = d.upload(x);
        const float* dyd = d.upload(dy);
        float* y = d.alloc<float>(ny);
        int32_t* argmax = d.alloc<int32_t>(ny);
        float* dx = d.alloc<float>(nx);
        kernels::max_pool2d_forward<float>(s, p, xd, y, argmax);
        kernels::max_pool2d_backward<float>(s, p, dyd, argmax, dx);
        std::vector<double> out = d.download(y, ny);
        test::append(out, d.download(argmax, ny));
        test::append(out, d.download(dx, nx));
        kernels::avg_pool2d_forward<float>(s, p, xd, y);
        kernels::avg_pool2d_backward<float>(s, p, dyd, dx);
        test::append(out, d.download(y, ny));
        test::append(out, d.download(dx, nx));
        float* g = d.alloc<float>(p.n * p.c);
        kernels::global_avg_pool_forward<float>(s, p.n, hw, p.c, xd, g);
        kernels::global_avg_pool_backward<float>(s, p.n, hw, p.c, g, dx);
        test::append(out, d.download(g, p.n * p.c));
        test::append(out, d.download(dx, nx));
        return out;
      },
      1e-5);
}

TEST_P(KernelLibraryDevices, ReduceUnderVendor) {
  // More than one 16384-element chunk, so the chunk partials are added as the CPU adds them.
  const int64_t rows = 3000, cols = 7, n = rows * cols;
  const auto x = random_vec<float>(n, 23), y0 = random_vec<float>(n, 24), acc0 = random_vec<float>(cols, 25);
  expect_vendor_same_as_kiln_cpu(
      [&](DeviceRunner& d) {
        const Stream s = d.stream();
        float* xd = d.upload(x);
        float* sums = d.upload(acc0);
        kernels::sum_rows<float>(s, xd, rows, cols, sums, /*accumulate=*/true);
        float* fresh = d.alloc<float>(cols);
        kernels::sum_rows<float>(s, xd, rows, cols, fresh, /*accumulate=*/false);
        std::vector<double> out = d.download(sums, cols);
        test::append(out, d.download(fresh, cols));
        out.push_back(kernels::sum_squares<float>(s, xd, n));
        double* sq = d.alloc<double>(1);
        kernels::sum_squares_async<float>(s, xd, n - 5, sq);
        test::append(out, d.download(sq, 1));
        kernels::scale_inplace<float>(s, xd, n, 0.75f);
        kernels::add_inplace<float>(s, xd, d.upload(y0), n);
        test::append(out, d.download(xd, n));
        return out;
      },
      1e-5);
}

TEST_P(KernelLibraryDevices, ActivationUnderVendor) {
  const int64_t n = 1000;
  std::vector<float> x = random_vec<float>(n, 26, -4.0, 4.0);
  x[0] = 0.0f, x[1] = -0.0f;
  const auto dy = random_vec<float>(n, 27);
  for (kernels::Activation act : test::all_activations()) {
    SCOPED_TRACE(static_cast<int>(act));
    expect_vendor_same_as_kiln_cpu(
        [&](DeviceRunner& d) {
          const Stream s = d.stream();
          const float* xd = d.upload(x);
          float* y = d.alloc<float>(n);
          float* dx = d.alloc<float>(n);
          kernels::activation_forward<float>(s, act, 0.1f, xd, y, n);
          kernels::activation_backward<float>(s, act, 0.1f, xd, y, d.upload(dy), dx, n);
          std::vector<double> out = d.download(y, n);
          test::append(out, d.download(dx, n));
          return out;
        },
        1e-5);
  }
}

TEST_P(KernelLibraryDevices, OptimizerUnderVendor) {
  const int64_t n = 3000;
  const auto p0 = random_vec<float>(n, 28), g = random_vec<float>(n, 29), m0 = random_vec<float>(n, 30);
  const auto v0 = random_vec<float>(n, 31, 0.0, 1.0);
  for (bool nesterov : {false, true}) {
    SCOPED_TRACE(nesterov ? "sgd nesterov" : "sgd");
    expect_vendor_same_as_kiln_cpu(
        [&](DeviceRunner& d) {
          float* p = d.upload(p0);
          float* vel = d.upload(m0);
          kernels::sgd_update<float>(d.stream(), n, p, d.upload(g), vel, {0.05f, 0.9f, 1e-3f, nesterov});
          std::vector<double> out = d.download(p, n);
          test::append(out, d.download(vel, n));
          return out;
        },
        1e-5);
  }
  for (bool decoupled : {false, true}) {
    SCOPED_TRACE(decoupled ? "adamw" : "adam");
    expect_vendor_same_as_kiln_cpu(
        [&](DeviceRunner& d) {
          float* p = d.upload(p0);
          float* m = d.upload(m0);
          float* v = d.upload(v0);
          kernels::AdamHyper h;
          h.lr = 1e-2f, h.weight_decay = 0.01f, h.decoupled_weight_decay = decoupled, h.step = 3;
          kernels::adam_update<float>(d.stream(), n, p, d.upload(g), m, v, h);
          std::vector<double> out = d.download(p, n);
          test::append(out, d.download(m, n));
          test::append(out, d.download(v, n));
          return out;
        },
        1e-5);
  }
}

TEST_P(KernelLibraryDevices, LossUnderVendor) {
  const int64_t batch = 37, classes = 11;
  const auto logits = random_vec<float>(batch * classes, 32, -6.0, 6.0), pred = random_vec<float>(batch, 33, -4.0, 4.0);
  const auto target = random_vec<float>(batch, 34, 0.0, 1.0);
  std::vector<int32_t> labels(batch);
  for (int64_t r = 0; r < batch; ++r) labels[r] = static_cast<int32_t>((r * 7) % classes);
  expect_vendor_same_as_kiln_cpu(
      [&](DeviceRunner& d) {
        const Stream s = d.stream();
        float* probs = d.alloc<float>(batch * classes);
        float* dlogits = d.alloc<float>(batch * classes);
        float* out = d.alloc<float>(batch * 7);
        const int32_t* l = d.upload(labels);
        const float* p = d.upload(pred);
        const float* t = d.upload(target);
        kernels::softmax_cross_entropy_forward<float>(s, d.upload(logits), l, batch, classes, probs, out);
        kernels::softmax_cross_entropy_backward<float>(s, probs, l, batch, classes, 0.5f, dlogits);
        kernels::mse_forward<float>(s, p, t, batch, out + batch);
        kernels::mse_backward<float>(s, p, t, batch, 0.5f, out + 2 * batch);
        kernels::huber_forward<float>(s, p, t, batch, 1.0f, out + 3 * batch);
        kernels::huber_backward<float>(s, p, t, batch, 1.0f, 0.5f, out + 4 * batch);
        kernels::logistic_forward<float>(s, p, t, batch, out + 5 * batch);
        kernels::logistic_backward<float>(s, p, t, batch, 0.5f, out + 6 * batch);
        std::vector<double> all = d.download(out, batch * 7);
        test::append(all, d.download(probs, batch * classes));
        test::append(all, d.download(dlogits, batch * classes));
        return all;
      },
      1e-5);
}

// The reference embedding kernels (kernels/cuda/reference_embedding.cu) sum in the CPU's order
// and are built -fmad=false: the CPU's bits (tolerance 0), repeated ids and empty examples included.
TEST_P(KernelLibraryDevices, EmbeddingUnderVendor) {
  const int64_t rows = 23, dim = 5, batch = 9;
  const std::vector<int64_t> ids = {4, 4, 0, 22, 7, 4, 7, 1, 22, 22, 3}, offsets = {0, 2, 2, 5, 6, 6, 8, 9, 10, 11};
  const auto table = random_vec<float>(rows * dim, 61), dout = random_vec<float>(batch * dim, 62);
  const int64_t nnz = static_cast<int64_t>(ids.size());
  for (kernels::Combiner comb : {kernels::Combiner::sum, kernels::Combiner::mean}) {
    expect_vendor_same_as_kiln_cpu(
        [&](DeviceRunner& d) {
          const int64_t* gi = d.upload(ids);
          const int64_t* go = d.upload(offsets);
          float* out = d.alloc<float>(batch * dim);
          kernels::embedding_forward<float>(d.stream(), d.upload(table), rows, dim, gi, go, batch, comb, out);
          int64_t* unique = d.alloc<int64_t>(nnz);
          float* grads = d.alloc<float>(nnz * dim);
          const int64_t count =
              kernels::embedding_backward<float>(d.stream(), d.upload(dout), rows, dim, gi, go, batch, comb, unique, grads);
          std::vector<double> result = d.download(out, batch * dim);
          result.push_back(static_cast<double>(count));
          test::append(result, d.download(unique, count));
          test::append(result, d.download(grads, count * dim));
          return result;
        },
        0.0);
  }
}

TEST_P(KernelLibraryDevices, DropoutUnderVendor) {
  const int64_t n = 1001;
  const auto x = random_vec<float>(n, 35), dy = random_vec<float>(n, 36);
  for (float rate : {0.0f, 0.3f, 1.0f}) {
    SCOPED_TRACE(rate);
    expect_vendor_same_as_kiln_cpu(
        [&](DeviceRunner& d) {
          float* y = d.alloc<float>(n);
          float* dx = d.alloc<float>(n);
          uint8_t* mask = d.alloc<uint8_t>(n);
          kernels::dropout_forward<float>(d.stream(), n, rate, 11, (5ull << 12) | 3, d.upload(x), y, mask, 7);
          kernels::dropout_backward<float>(d.stream(), n, rate, mask, d.upload(dy), dx);
          std::vector<double> out = d.download(y, n);
          test::append(out, d.download(dx, n));
          test::append(out, d.download(mask, n));
          return out;
        },
        0.0);
  }
}

KILN_DEVICE_TEST_SUITE(KernelLibraryDevices);

}  // namespace
}  // namespace kiln
