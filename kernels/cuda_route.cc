#include "kernels/cuda_route.h"

namespace kiln::kernels {

const char* cuda_impl_name(CudaImpl impl) {
  switch (impl) {
    case CudaImpl::kiln: return "kiln";
    case CudaImpl::cublaslt: return "cublaslt";
    case CudaImpl::cudnn: return "cudnn";
    case CudaImpl::reference: return "reference";
  }
  return "?";
}

CudaImpl cuda_gemm_impl(MathPrecision precision, bool vendor) {
  if (precision == MathPrecision::fp32) return CudaImpl::cublaslt;
  // At BF16 VENDOR still runs Kiln's bf16 kernels.
  return vendor && precision == MathPrecision::tf32 ? CudaImpl::cublaslt : CudaImpl::kiln;
}

CudaImpl cuda_gemm_row_invariant_impl(MathPrecision precision, bool /*vendor*/) {
  return precision == MathPrecision::fp32 ? CudaImpl::reference : CudaImpl::kiln;
}

CudaImpl cuda_conv_impl(MathPrecision precision, bool vendor, bool row_invariant) {
  if (row_invariant) return precision == MathPrecision::fp32 ? CudaImpl::reference : CudaImpl::kiln;
  if (precision == MathPrecision::fp32) return CudaImpl::cudnn;
  return vendor && precision == MathPrecision::tf32 ? CudaImpl::cudnn : CudaImpl::kiln;
}

}  // namespace kiln::kernels
