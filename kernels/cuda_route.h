#pragma once
// Which implementation a GEMM or convolution runs on a CUDA stream, decided from the stream's
// precision and the kernel library (kernels/kernel_library.h) by the plain functions below, so
// the choice is tested on any machine (tests/kernels/test_cuda_route.cc); the CUDA cases of
// kernels/gemm.cc and kernels/conv.cc only follow it (docs/cuda.md, "Precision" and "Kernel
// libraries").
//
// Kiln's GEMM and convolution kernels run on tensor cores (TF32 or BF16) only, so FP32 goes to
// the libraries with tensor-op math off (cuBLASLt CUBLAS_COMPUTE_32F, cuDNN CUDNN_FMA_MATH), and
// the row-invariant (inference) paths to the reference kernels: cuBLASLt and cuDNN choose their
// algorithm by shape, so a row's answer could change with its batch size; one thread per output
// summing in a fixed order cannot. VENDOR (at any precision) takes the same routes, so it runs
// none of Kiln's GEMM or convolution kernels: cuBLASLt (bf16 inputs at BF16), cuDNN (at BF16 on
// operands rounded to bf16) and the reference kernels.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

enum class CudaImpl : uint8_t {
  kiln,       // Kiln's tensor-core kernels (kernels/cuda/gemm.cu, conv.cu)
  cublaslt,   // cuBLASLt (kernels/cuda/gemm_cublaslt.cu)
  cudnn,      // cuDNN (kernels/cuda/vendor_conv.cu)
  reference,  // one thread per output, fixed order (kernels/cuda/reference.h)
};

// "kiln", "cublaslt", "cudnn" or "reference".
const char* cuda_impl_name(CudaImpl impl);

// kernels::gemm.
CudaImpl cuda_gemm_impl(MathPrecision precision, bool vendor);
// kernels::gemm_row_invariant.
CudaImpl cuda_gemm_row_invariant_impl(MathPrecision precision, bool vendor);
// kernels::conv2d_forward (row_invariant as its argument), conv2d_backward_data and
// conv2d_backward_weight (row_invariant false).
CudaImpl cuda_conv_impl(MathPrecision precision, bool vendor, bool row_invariant);

}  // namespace kiln::kernels
