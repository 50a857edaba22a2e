// kernels/dispatch.h: what a cuda stream gets where there is no kernel for it, in this build.
// These checks run before any CUDA call, so they need no GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/stream.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"

namespace kiln {
namespace {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no kiln::Error)";
}

const Stream kCuda = Stream::cuda(0, nullptr);

#if !KILN_HAVE_CUDA
TEST(Dispatch, CudaStreamWithoutCudaIsAClearError) {
  std::vector<float> x(4, 1.0f), y(4);
  const std::string msg = error_of(
      [&] { kernels::activation_forward<float>(kCuda, kernels::Activation::relu, 0.0f, x.data(), y.data(), 4); });
  EXPECT_NE(msg.find("activation_forward"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no CUDA backend"), std::string::npos) << msg;
  // Every family says the same, whatever the element type or variant.
  for (const std::string& m :
       {error_of([&] { kernels::sum_squares<double>(kCuda, nullptr, 0); }),
        error_of([&] { kernels::gemm_row_invariant<float>(kCuda, 1, 1, 1, x.data(), 1, x.data(), 1, y.data(), 1); }),
        error_of([&] {
          kernels::embedding_backward<float>(kCuda, x.data(), 4, 1, nullptr, nullptr, 0, kernels::Combiner::sum,
                                             nullptr, y.data());
        })})
    EXPECT_NE(m.find("no CUDA backend"), std::string::npos) << m;
}
#else
TEST(Dispatch, CudaTakesF32Only) {
  std::vector<double> x(4, 1.0), y(4);
  const std::string msg = error_of(
      [&] { kernels::activation_forward<double>(kCuda, kernels::Activation::relu, 0.0f, x.data(), y.data(), 4); });
  EXPECT_NE(msg.find("activation_forward"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f32 only, got f64"), std::string::npos) << msg;
}
#endif

TEST(Dispatch, OpsWithoutACudaKernelSaySo) {
  std::vector<float> x(4, 1.0f), y(4);
  const std::string gemm =
      error_of([&] { kernels::gemm_row_invariant<float>(kCuda, 1, 1, 1, x.data(), 1, x.data(), 1, y.data(), 1); });
#if KILN_HAVE_CUDA
  int64_t count = 0;
  const std::string argmax =
      error_of([&] { kernels::count_argmax_matches_async<float>(kCuda, x.data(), nullptr, 0, 4, &count); });
  EXPECT_NE(argmax.find("no asynchronous CUDA kernel"), std::string::npos) << argmax;
#else
  EXPECT_NE(gemm.find("gemm_row_invariant"), std::string::npos) << gemm;
  EXPECT_NE(gemm.find("no CUDA backend"), std::string::npos) << gemm;
#endif
}

TEST(Dispatch, CpuRunsAtOnce) {
  // The cpu path is synchronous: the result is there when the call returns.
  std::vector<float> x = {-1.0f, 3.0f}, y(2);
  kernels::activation_forward<float>(Stream::cpu(), kernels::Activation::relu, 0.0f, x.data(), y.data(), 2);
  EXPECT_EQ(y, std::vector<float>({0.0f, 3.0f}));
  double sum = 0.0;
  kernels::sum_squares_async<float>(Stream::cpu(), x.data(), 2, &sum);
  EXPECT_EQ(sum, 10.0);
}

}  // namespace
}  // namespace kiln
