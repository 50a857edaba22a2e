// The cuBLASLt GEMM behind the backend switch: the comparison baseline for Kiln's own kernels
// (bench/gpu_gemm.cu), a fallback (kernel_library VENDOR) and the FP32 GEMM
// (kernels/cuda_route.h). Row-major C = op(A) op(B) is computed as the column-major C^T =
// op(B)^T op(A)^T, so the operands swap and no data moves. The bias/activation epilogue
// runs as a separate kernel (cuBLASLt's GELU epilogue is the tanh approximation, not Kiln's).
#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "core/cuda/check.h"
#include "core/cuda/memory.h"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/device_info.h"
#include "kernels/cuda/gemm.h"

#define KILN_CUBLAS_CHECK(expr)                                                                              \
  do {                                                                                                       \
    cublasStatus_t kiln_st_ = (expr);                                                                        \
    if (kiln_st_ != CUBLAS_STATUS_SUCCESS)                                                                   \
      ::kiln::fail(__FILE__, ":", __LINE__, ": ", #expr, ": cuBLAS status ", static_cast<int>(kiln_st_)); \
  } while (0)

namespace kiln::kernels::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

// Everything cuBLASLt needs for one problem shape, built once and reused.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

// (element bytes, compute type, trans_a, trans_b, m, n, k, lda, ldb, ldc, device, alignment of A,
// B, C):
// an algorithm chosen for 256-byte aligned operands may use vector loads that fault or fail on
// a sub-matrix starting a few elements in, so the alignment is part of the plan.
using PlanKey = std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, uint32_t,
                           uint32_t, uint32_t>;

// The largest power of two (at most 256, cuBLASLt's default assumption) dividing the address.
uint32_t alignment_of(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

struct LtState {
  cublasLtHandle_t handle = nullptr;
  std::map<PlanKey, Plan> plans;
  std::mutex mutex;
};

LtState& state(int device) {
  static std::mutex mutex;
  static auto* states = new std::map<int, LtState*>();
  std::lock_guard<std::mutex> lock(mutex);
  LtState*& s = (*states)[device];
  if (!s) {
    s = new LtState();
    KILN_CUBLAS_CHECK(cublasLtCreate(&s->handle));
  }
  return *s;
}

template <typename E>
constexpr cudaDataType_t data_type() {
  return sizeof(E) == 2 ? CUDA_R_16BF : CUDA_R_32F;
}

// fp32 inputs at the stream's precision: TF32 tensor cores, or at FP32 none (CUBLAS_COMPUTE_32F:
// fp32 products and sums, what precision FP32 promises). bf16 inputs accumulate in fp32.
template <typename E>
cublasComputeType_t compute_type(MathPrecision p) {
  return sizeof(E) == 2 || p == MathPrecision::fp32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
}

template <typename E>
Plan make_plan(cublasLtHandle_t handle, cublasComputeType_t compute, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
               int64_t ldb, int64_t ldc, uint32_t align_a, uint32_t align_b, uint32_t align_c) {
  Plan p;
  KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, compute, CUDA_R_32F));
  // Column-major: C^T[n, m] = op(B)^T[n, k] * op(A)^T[k, m].
  const cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;   // the stored B
  const cublasOperation_t op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // the stored A
  KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
  const cudaDataType_t t = data_type<E>();
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, t, trans_b ? k : n, trans_b ? n : k, ldb));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, t, trans_a ? m : k, trans_a ? k : m, lda));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, n, m, ldc));
  cublasLtMatmulPreference_t pref;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = kWorkspaceBytes;
  KILN_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  // The operands swap (column-major view): cuBLASLt's A is Kiln's B and the reverse; C is D.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}};
  for (const auto& [attr, bytes] : aligns)
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &bytes, sizeof(bytes)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  KILN_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found));
  cublasLtMatmulPreferenceDestroy(pref);
  if (found == 0)
    fail("cuBLASLt has no algorithm for gemm ", m, "x", n, "x", k, " with operands aligned to ", align_a, ", ",
         align_b, ", ", align_c, " bytes");
  p.algo = result.algo;
  return p;
}

}  // namespace

template <typename E>
void gemm_cublaslt(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const E* a, int64_t lda, const E* b, int64_t ldb, float beta, float* c, int64_t ldc,
                   const float* bias, Activation act, float slope) {
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) {
    // Nothing to multiply: Kiln's kernel scales C and applies the epilogue without reading A, B.
    gemm_kiln<E>(s, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, slope);
    return;
  }
  KILN_CHECK(s.device().is_cuda(), "CUDA gemm on a ", s.device().to_string(), " stream");
  const int device = current_device();
  LtState& st = state(device);
  const cudaStream_t stream = kiln::cuda::raw(s);
  kiln::cuda::DeviceArray<unsigned char> workspace(kWorkspaceBytes, stream, device);
  {
    std::lock_guard<std::mutex> lock(st.mutex);
    const uint32_t align_a = alignment_of(a), align_b = alignment_of(b), align_c = alignment_of(c);
    const cublasComputeType_t compute = compute_type<E>(s.precision());
    const PlanKey key{static_cast<int>(sizeof(E)), static_cast<int>(compute), trans_a, trans_b, m, n, k, lda, ldb,
                      ldc, device, align_a, align_b, align_c};
    auto it = st.plans.find(key);
    if (it == st.plans.end())
      it = st.plans
               .emplace(key, make_plan<E>(st.handle, compute, trans_a, trans_b, m, n, k, lda, ldb, ldc, align_a,
                                          align_b, align_c))
               .first;
    const Plan& p = it->second;
    KILN_CUBLAS_CHECK(cublasLtMatmul(st.handle, p.desc, &alpha, b, p.a, a, p.b, &beta, c, p.c, c, p.c, &p.algo,
                                     workspace.get(), kWorkspaceBytes, stream));
  }
  if (bias || act != Activation::none) bias_activation(s, m, n, c, ldc, bias, act, slope);
}

#define KILN_INSTANTIATE(E)                                                                                          \
  template void gemm_cublaslt<E>(const Stream&, bool, bool, int64_t, int64_t, int64_t, float, const E*, int64_t,     \
                                 const E*, int64_t, float, float*, int64_t, const float*, Activation, float);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(__nv_bfloat16)
#undef KILN_INSTANTIATE

}  // namespace kiln::kernels::cuda
