// kernels/cuda_route.h: which implementation a GEMM or convolution takes on CUDA, per precision
// and kernel library. Plain logic, checked on any machine; the implementations themselves are
// checked on the GPU by the Devices/* and KernelLibraryDevices cases.
#include "kernels/cuda_route.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln {
namespace {

using kernels::CudaImpl;

std::string gemm(MathPrecision p, bool vendor) { return kernels::cuda_impl_name(kernels::cuda_gemm_impl(p, vendor)); }
std::string gemm_ri(MathPrecision p, bool vendor) {
  return kernels::cuda_impl_name(kernels::cuda_gemm_row_invariant_impl(p, vendor));
}
std::string conv(MathPrecision p, bool vendor, bool row_invariant) {
  return kernels::cuda_impl_name(kernels::cuda_conv_impl(p, vendor, row_invariant));
}

TEST(CudaRoute, Fp32NeverRunsKilnsTensorCoreKernels) {
  for (bool vendor : {false, true}) {
    SCOPED_TRACE(vendor ? "vendor" : "kiln");
    EXPECT_EQ(gemm(MathPrecision::fp32, vendor), "cublaslt");
    EXPECT_EQ(gemm_ri(MathPrecision::fp32, vendor), "reference");
    EXPECT_EQ(conv(MathPrecision::fp32, vendor, false), "cudnn");
    EXPECT_EQ(conv(MathPrecision::fp32, vendor, true), "reference");
  }
}

TEST(CudaRoute, KilnByDefaultAtTf32AndBf16) {
  for (MathPrecision p : {MathPrecision::tf32, MathPrecision::bf16}) {
    SCOPED_TRACE(precision_name(p));
    EXPECT_EQ(gemm(p, false), "kiln");
    EXPECT_EQ(gemm_ri(p, false), "kiln");
    EXPECT_EQ(conv(p, false, false), "kiln");
    EXPECT_EQ(conv(p, false, true), "kiln");
  }
}

TEST(CudaRoute, VendorRunsNoneOfKilnsGemmOrConvolutionKernels) {
  for (MathPrecision p : {MathPrecision::fp32, MathPrecision::tf32, MathPrecision::bf16}) {
    SCOPED_TRACE(precision_name(p));
    EXPECT_EQ(gemm(p, true), "cublaslt");
    EXPECT_EQ(conv(p, true, false), "cudnn");
    // Never cuBLASLt or cuDNN for the row-invariant paths (they choose their algorithm by shape):
    // the reference kernels.
    EXPECT_EQ(gemm_ri(p, true), "reference");
    EXPECT_EQ(conv(p, true, true), "reference");
  }
}

}  // namespace
}  // namespace kiln
