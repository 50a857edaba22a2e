// GEMMs and convolutions at TF32 and BF16 (Stream::precision) on every device, and at FP32. The CPU and sim
// round the operands exactly as the GPU's tensor cores take them (kernels/cpu/precision.h) and sum
// in fp32: against a double reference computed from host-rounded inputs they agree to summation
// rounding, sim equals the CPU bit for bit, and CUDA (skipped without a GPU) matches the same
// reference within 1e-5.
#include <cmath>

#include "kernels/conv.h"
#include "kernels/cpu/precision.h"
#include "kernels/gemm.h"
#include "tests/kernels/conv_directions.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using kernels::cpu::round_bf16;
using kernels::cpu::round_tf32;
using test::DeviceRunner;
using test::random_vec;

TEST(Precision, RoundsAsTheGpu) {
  // TF32 keeps 10 mantissa bits and rounds ties away from zero (cvt.rna.tf32.f32).
  EXPECT_EQ(round_tf32(1.0f + 0x1p-11f), 1.0f + 0x1p-10f);
  EXPECT_EQ(round_tf32(-(1.0f + 0x1p-11f)), -(1.0f + 0x1p-10f));
  EXPECT_EQ(round_tf32(1.0f + 0x1p-11f - 0x1p-23f), 1.0f);
  EXPECT_EQ(round_tf32(1.0f + 0x1p-10f + 0x1p-11f), 1.0f + 0x1p-9f);  // a tie rounds away, not to even
  // BF16 keeps 7 and rounds ties to even (__float2bfloat16).
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f), 1.0f);
  EXPECT_EQ(round_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);
  EXPECT_EQ(round_bf16(-(1.0f + 0x1p-8f + 0x1p-20f)), -(1.0f + 0x1p-7f));
  for (float special : {INFINITY, -INFINITY, 0.0f, -0.0f}) {
    EXPECT_EQ(round_tf32(special), special);
    EXPECT_EQ(round_bf16(special), special);
  }
  EXPECT_TRUE(std::isnan(round_tf32(NAN)));
  EXPECT_TRUE(std::isnan(round_bf16(NAN)));
}

std::vector<float> rounded_copy(std::vector<float> v, MathPrecision p) {
  for (float& x : v) x = p == MathPrecision::tf32 ? round_tf32(x) : round_bf16(x);
  return v;
}

class PrecisionDevices : public test::DeviceTest {};

TEST_P(PrecisionDevices, GemmRoundsItsInputs) {
  const int64_t m = 33, n = 21, k = 150;
  const auto a = random_vec<float>(m * k, 31), b = random_vec<float>(k * n, 32);
  for (MathPrecision p : {MathPrecision::tf32, MathPrecision::bf16}) {
    SCOPED_TRACE(precision_name(p));
    auto run = [&](DeviceRunner& d) {
      float* c = d.alloc<float>(m * n);
      kernels::gemm<float>(d.stream().with_precision(p), false, false, m, n, k, 1.0f, d.upload(a), k, d.upload(b), n,
                           0.0f, c, n);
      return d.download(c, m * n);
    };
    expect_same_as_cpu(run, 1e-5);
    // Against the products of the rounded inputs, summed in double.
    const auto ar = rounded_copy(a, p), br = rounded_copy(b, p);
    std::vector<double> want(m * n, 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t q = 0; q < k; ++q) want[i * n + j] += static_cast<double>(ar[i * k + q]) * br[q * n + j];
    DeviceRunner dev(GetParam());
    const std::vector<double> got = run(dev);
    EXPECT_REL_NEAR(got, want, 1e-5);
    // ... and not the fp32 products: the rounding took place.
    DeviceRunner cpu(Device::Kind::cpu);
    float* c32 = cpu.alloc<float>(m * n);
    kernels::gemm<float>(Stream::cpu(), false, false, m, n, k, 1.0f, cpu.upload(a), k, cpu.upload(b), n, 0.0f, c32, n);
    const std::vector<double> fp32 = cpu.download(c32, m * n);
    int differ = 0;
    for (int64_t i = 0; i < m * n; ++i) differ += fp32[i] != got[i];
    EXPECT_GT(differ, m * n / 2);
  }
}

TEST_P(PrecisionDevices, ConvolutionsRoundTheirInputs) {
  kernels::Conv2dShape c;
  c.n = 2, c.h = 6, c.w = 5, c.c_in = 4, c.c_out = 3, c.kh = 3, c.kw = 3, c.pad_h = 1, c.pad_w = 1;
  const int64_t ny = c.output_elems();
  const auto x = random_vec<float>(c.input_elems(), 41), w = random_vec<float>(c.weight_elems(), 42),
             dy = random_vec<float>(ny, 43);
  for (MathPrecision p : {MathPrecision::tf32, MathPrecision::bf16}) {
    SCOPED_TRACE(precision_name(p));
    auto run = [&](DeviceRunner& d) { return test::conv_all_directions(d, d.stream().with_precision(p), c, x, w, dy); };
    expect_same_as_cpu(run, 1e-5);
    // The forward against the rounded inputs in double (via the fp32 CPU convolution of the
    // rounded inputs: exact products, fp32 sums).
    DeviceRunner cpu(Device::Kind::cpu), dev(GetParam());
    float* y = cpu.alloc<float>(ny);
    kernels::conv2d_forward<float>(Stream::cpu(), c, cpu.upload(rounded_copy(x, p)), cpu.upload(rounded_copy(w, p)),
                                   nullptr, y, kernels::Activation::none, 0.0f);
    const std::vector<double> want = cpu.download(y, ny);
    const std::vector<double> got = run(dev);
    EXPECT_REL_NEAR(std::vector<double>(got.begin(), got.begin() + ny), want, 1e-5);
  }
}

// FP32 rounds nothing on any device. On CUDA the GEMM runs through cuBLASLt (CUBLAS_COMPUTE_32F),
// the convolutions through cuDNN (CUDNN_FMA_MATH) and the row-invariant GEMM and convolution
// through the reference kernels (kernels/cuda_route.h): each within 1e-5 of the CPU's fp32, which
// TF32 (10 mantissa bits, errors near 1e-3 here) would miss.
TEST_P(PrecisionDevices, Fp32RoundsNothing) {
  const int64_t m = 33, n = 21, k = 150;
  const auto a = random_vec<float>(m * k, 51), b = random_vec<float>(k * n, 52), bias = random_vec<float>(n, 53);
  kernels::Conv2dShape c;
  c.n = 2, c.h = 6, c.w = 5, c.c_in = 4, c.c_out = 3, c.kh = 3, c.kw = 3, c.pad_h = 1, c.pad_w = 1;
  const int64_t ny = c.output_elems();
  const auto x = random_vec<float>(c.input_elems(), 54), w = random_vec<float>(c.weight_elems(), 55),
             dy = random_vec<float>(ny, 56), cbias = random_vec<float>(c.c_out, 57);
  auto run = [&](DeviceRunner& d) {
    const Stream s = d.stream().with_precision(MathPrecision::fp32);
    float* g = d.alloc<float>(m * n);
    float* gri = d.alloc<float>(m * n);
    float* yri = d.alloc<float>(ny);
    kernels::gemm<float>(s, false, false, m, n, k, 1.0f, d.upload(a), k, d.upload(b), n, 0.0f, g, n);
    kernels::gemm_row_invariant<float>(s, m, n, k, d.upload(a), k, d.upload(b), n, gri, n, d.upload(bias),
                                       kernels::Activation::relu, 0.0f);
    kernels::conv2d_forward<float>(s, c, d.upload(x), d.upload(w), d.upload(cbias), yri, kernels::Activation::relu,
                                   0.0f, true);
    std::vector<double> out = d.download(g, m * n);
    test::append(out, d.download(gri, m * n));
    test::append(out, d.download(yri, ny));
    test::append(out, test::conv_all_directions(d, s, c, x, w, dy, cbias));
    return out;
  };
  expect_same_as_cpu(run, 1e-5);
  // The GEMM against the unrounded products summed in double.
  std::vector<double> want(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t q = 0; q < k; ++q) want[i * n + j] += static_cast<double>(a[i * k + q]) * b[q * n + j];
  DeviceRunner dev(GetParam());
  const std::vector<double> got = run(dev);
  EXPECT_REL_NEAR(std::vector<double>(got.begin(), got.begin() + m * n), want, 1e-5);
}

KILN_DEVICE_TEST_SUITE(PrecisionDevices);

}  // namespace
}  // namespace kiln
