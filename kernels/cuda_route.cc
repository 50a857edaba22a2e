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

namespace {

// Kiln's kernels only where they exist (TF32, BF16) and were not switched off (VENDOR).
bool kiln_kernels(MathPrecision precision, bool vendor) { return precision != MathPrecision::fp32 && !vendor; }

}  // namespace

CudaImpl cuda_gemm_impl(MathPrecision precision, bool vendor) {
  return kiln_kernels(precision, vendor) ? CudaImpl::kiln : CudaImpl::cublaslt;
}

CudaImpl cuda_gemm_row_invariant_impl(MathPrecision precision, bool vendor) {
  return kiln_kernels(precision, vendor) ? CudaImpl::kiln : CudaImpl::reference;
}

CudaImpl cuda_conv_impl(MathPrecision precision, bool vendor, bool row_invariant) {
  if (kiln_kernels(precision, vendor)) return CudaImpl::kiln;
  return row_invariant ? CudaImpl::reference : CudaImpl::cudnn;
}

}  // namespace kiln::kernels
