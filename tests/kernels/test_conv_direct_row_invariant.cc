// The im2col-free row-invariant convolution (AVX-512) gives the bits of im2col + the row-invariant
// GEMM's AVX2 tiles and its epilogue, so a servable answers the same on an AVX2 and an AVX-512
// machine, and any range of rows gives the same bits as the whole: shallow and deep kernels,
// strides, paddings wider than the kernel's reach, several 64-channel panels and several tap
// blocks (3x3x32 = 288 taps).
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/act_impl.h"
#include "kernels/cpu/conv_direct_row_invariant.h"
#include "kernels/cpu/pooling.h"
#include "kernels/cpu/gemm.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

kernels::Conv2dShape shape(int64_t n, int64_t h, int64_t w, int64_t ci, int64_t co, int64_t k, int64_t stride, int64_t pad) {
  kernels::Conv2dShape c;
  c.n = n, c.h = h, c.w = w, c.c_in = ci, c.c_out = co, c.kh = k, c.kw = k, c.stride_h = stride, c.stride_w = stride;
  c.pad_h = pad, c.pad_w = pad;
  return c;
}

// The GEMM's A: one row of kh * kw * c_in taps per output pixel, zeros in the padding.
std::vector<float> im2col(const kernels::Conv2dShape& c, const std::vector<float>& x) {
  const int64_t oh = c.out_h(), ow = c.out_w(), k = c.kh * c.kw * c.c_in;
  std::vector<float> cols(static_cast<size_t>(c.n * oh * ow * k));
  size_t p = 0;
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t ky = 0; ky < c.kh; ++ky)
          for (int64_t kx = 0; kx < c.kw; ++kx)
            for (int64_t ci = 0; ci < c.c_in; ++ci) {
              const int64_t iy = oy * c.stride_h - c.pad_h + ky, ix = ox * c.stride_w - c.pad_w + kx;
              const bool in = iy >= 0 && iy < c.h && ix >= 0 && ix < c.w;
              cols[p++] = in ? x[static_cast<size_t>(((n * c.h + iy) * c.w + ix) * c.c_in + ci)] : 0.0f;
            }
  return cols;
}

std::vector<kernels::Conv2dShape> shapes() {
  return {shape(2, 28, 28, 1, 32, 3, 1, 1), shape(3, 9, 11, 3, 64, 3, 2, 1), shape(2, 12, 10, 1, 16, 5, 1, 2),
          shape(1, 7, 7, 3, 48, 3, 1, 0),   shape(2, 14, 14, 32, 64, 3, 1, 1), shape(1, 9, 8, 8, 160, 3, 2, 1),
          shape(2, 6, 5, 4, 48, 5, 1, 3),   shape(1, 5, 7, 70, 16, 1, 1, 0)};
}

// im2col + the AVX2 tiles, then the GEMM epilogue f(acc + bias).
std::vector<float> reference(const kernels::Conv2dShape& c, const std::vector<float>& x, const std::vector<float>& w,
                             const float* bias, kernels::Activation act) {
  const int64_t rows = c.n * c.out_h() * c.out_w(), k = c.kh * c.kw * c.c_in;
  const std::vector<float> cols = im2col(c, x);
  std::vector<float> want(static_cast<size_t>(rows * c.c_out));
  kernels::cpu::sgemm_row_invariant_isa(false, rows, c.c_out, k, cols.data(), k, w.data(), c.c_out, want.data(), c.c_out);
  if (bias || act != kernels::Activation::none)
    kernels::detail::with_activation<float>(act, 0.01f, [&](auto f) {
      kernels::detail::bias_activation_rows(0, rows, c.c_out, want.data(), c.c_out, bias, f);
    });
  return want;
}

void expect_gemm_bits(const kernels::Conv2dShape& c, bool with_bias, kernels::Activation act) {
  const int64_t rows = c.n * c.out_h() * c.out_w(), k = c.kh * c.kw * c.c_in;
  const auto x = test::random_vec<float>(static_cast<size_t>(c.n * c.h * c.w * c.c_in), 11);
  const auto w = test::random_vec<float>(static_cast<size_t>(k * c.c_out), 12);
  const auto b = test::random_vec<float>(static_cast<size_t>(c.c_out), 13);
  const float* bias = with_bias ? b.data() : nullptr;
  const std::vector<float> want = reference(c, x, w, bias, act);
  std::vector<float> whole = test::poisoned<float>(want.size());
  kernels::cpu::conv_direct_row_invariant(c, x.data(), w.data(), bias, act, 0.01f, 0, rows, whole.data());
  EXPECT_EQ(std::memcmp(whole.data(), want.data(), want.size() * 4), 0) << c.c_in << " -> " << c.c_out;
  // Ranges that cut the rows' runs and the images anywhere.
  std::vector<float> parts = test::poisoned<float>(want.size());
  for (int64_t r = 0; r < rows; r += 5)
    kernels::cpu::conv_direct_row_invariant(c, x.data(), w.data(), bias, act, 0.01f, r, std::min(rows, r + 5),
                                            parts.data());
  EXPECT_EQ(std::memcmp(parts.data(), want.data(), want.size() * 4), 0) << c.c_in << " -> " << c.c_out;
}

TEST(ConvDirectRowInvariant, GivesTheGemmBitsForAnyRows) {
  for (const auto& c : shapes()) {
    if (!kernels::cpu::conv_direct_row_invariant_applies(c)) GTEST_SKIP() << "no AVX-512 on this CPU";
    expect_gemm_bits(c, false, kernels::Activation::none);
  }
}

TEST(ConvDirectRowInvariant, FusedBiasAndActivationGiveTheEpiloguesBits) {
  for (const auto act : {kernels::Activation::relu, kernels::Activation::leaky_relu, kernels::Activation::gelu}) {
    for (const auto& c : shapes()) {
      if (!kernels::cpu::conv_direct_row_invariant_applies(c)) GTEST_SKIP() << "no AVX-512 on this CPU";
      expect_gemm_bits(c, true, act);
    }
  }
}

// The convolution and the max pool after it in one pass give the bits of the two passes, for any
// range of pooled pixels, windows of 2x2 and 3x3 (rows and columns the pool drops included), and
// NaN in the image.
TEST(ConvDirectRowInvariant, FusedMaxPoolGivesTheTwoPassesBits) {
  struct Case {
    kernels::Conv2dShape c;
    int64_t pool;
  };
  const std::vector<Case> cases = {{shape(3, 28, 28, 1, 32, 3, 1, 1), 2}, {shape(2, 14, 14, 32, 64, 3, 1, 1), 2},
                                   {shape(2, 11, 9, 3, 48, 3, 1, 1), 2},  {shape(1, 13, 10, 8, 128, 3, 1, 0), 3},
                                   {shape(2, 9, 9, 4, 16, 3, 2, 1), 2}};
  for (const auto& [c, k] : cases) {
    kernels::Pool2dShape p;
    p.n = c.n, p.h = c.out_h(), p.w = c.out_w(), p.c = c.c_out, p.kh = p.kw = p.stride_h = p.stride_w = k;
    if (!kernels::cpu::conv_max_pool_direct_applies(c, p)) GTEST_SKIP() << "no AVX-512 on this CPU";
    const int64_t rows = c.n * c.out_h() * c.out_w(), k_taps = c.kh * c.kw * c.c_in;
    auto x = test::random_vec<float>(static_cast<size_t>(c.n * c.h * c.w * c.c_in), 21);
    x[x.size() / 3] = std::numeric_limits<float>::quiet_NaN();
    const auto w = test::random_vec<float>(static_cast<size_t>(k_taps * c.c_out), 22);
    const auto b = test::random_vec<float>(static_cast<size_t>(c.c_out), 23);
    for (const auto act : {kernels::Activation::relu, kernels::Activation::none}) {
      std::vector<float> conv(static_cast<size_t>(rows * c.c_out));
      kernels::cpu::conv_direct_row_invariant(c, x.data(), w.data(), b.data(), act, 0.01f, 0, rows, conv.data());
      std::vector<float> want(static_cast<size_t>(p.n * p.out_h() * p.out_w() * p.c));
      kernels::cpu::max_pool2d_forward<float>(Stream::cpu(), p, conv.data(), want.data(), nullptr);
      const int64_t pooled = p.n * p.out_h() * p.out_w();
      for (const int64_t step : {pooled, p.out_w() * 2, int64_t{5}, int64_t{1}}) {
        std::vector<float> got = test::poisoned<float>(want.size());
        for (int64_t q = 0; q < pooled; q += step)
          kernels::cpu::conv_max_pool_direct_row_invariant(c, p, x.data(), w.data(), b.data(), act, 0.01f, q,
                                                           std::min(pooled, q + step), got.data());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0)
            << c.c_in << " -> " << c.c_out << ", pool " << k << ", step " << step;
      }
    }
  }
}

}  // namespace
}  // namespace kiln
