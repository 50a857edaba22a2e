// The im2col-free row-invariant convolution (AVX-512) gives the bits of im2col + the row-invariant
// GEMM's AVX2 tiles, so a servable answers the same on an AVX2 and an AVX-512 machine, and any
// range of rows gives the same bits as the whole.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/cpu/conv_direct_row_invariant.h"
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

TEST(ConvDirectRowInvariant, GivesTheGemmBitsForAnyRows) {
  const std::vector<kernels::Conv2dShape> shapes = {shape(2, 28, 28, 1, 32, 3, 1, 1), shape(3, 9, 11, 3, 64, 3, 2, 1),
                                                    shape(2, 12, 10, 1, 16, 5, 1, 2), shape(1, 7, 7, 3, 48, 3, 1, 0)};
  for (const auto& c : shapes) {
    if (!kernels::cpu::conv_direct_row_invariant_applies(c)) GTEST_SKIP() << "no AVX-512 on this CPU";
    const int64_t rows = c.n * c.out_h() * c.out_w(), k = c.kh * c.kw * c.c_in;
    const auto x = test::random_vec<float>(static_cast<size_t>(c.n * c.h * c.w * c.c_in), 11);
    const auto w = test::random_vec<float>(static_cast<size_t>(k * c.c_out), 12);
    const std::vector<float> cols = im2col(c, x);
    std::vector<float> want(static_cast<size_t>(rows * c.c_out));
    kernels::cpu::sgemm_row_invariant_isa(false, rows, c.c_out, k, cols.data(), k, w.data(), c.c_out, want.data(), c.c_out);
    std::vector<float> whole = test::poisoned<float>(want.size());
    kernels::cpu::conv_direct_row_invariant(c, x.data(), w.data(), 0, rows, whole.data());
    EXPECT_EQ(std::memcmp(whole.data(), want.data(), want.size() * 4), 0) << c.c_in << " -> " << c.c_out;
    // Ranges that cut the interior runs anywhere.
    std::vector<float> parts = test::poisoned<float>(want.size());
    for (int64_t r = 0; r < rows; r += 5)
      kernels::cpu::conv_direct_row_invariant(c, x.data(), w.data(), r, std::min(rows, r + 5), parts.data());
    EXPECT_EQ(std::memcmp(parts.data(), want.data(), want.size() * 4), 0) << c.c_in << " -> " << c.c_out;
  }
}

}  // namespace
}  // namespace kiln
