#pragma once
// Helpers of the CUDA kernel tests: skip without a GPU (or fail, with KILN_REQUIRE_GPU=1),
// device buffers that are poisoned (NaN) before every run and report CUDA errors, bf16/tf32
// rounding on the host, and error measures against a double reference: norm-wise (rel_error)
// and per element (close_elementwise).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/device_choice.h"
#include "core/cuda/stream.h"
#include "core/philox.h"

namespace kiln::cuda_test {

// KILN_REQUIRE_GPU=1 (scripts/gpu_check.sh sets it): a GPU test without a usable GPU fails
// instead of skipping, so a run where the runtime cannot reach the GPU (a driver older than the
// toolkit, no device node) cannot pass by skipping everything.
inline bool gpu_required() {
  const char* v = std::getenv("KILN_REQUIRE_GPU");
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

}  // namespace kiln::cuda_test

// First statement of every GPU test. The reason comes from core's cuda_unavailable_reason():
// the CUDA runtime's own error string (cudaGetDeviceCount's) or that no device is visible.
#define KILN_REQUIRE_GPU()                                                                             \
  do {                                                                                                 \
    const std::string kiln_why_ = ::kiln::cuda_unavailable_reason();                                   \
    if (!kiln_why_.empty()) {                                                                          \
      if (::kiln::cuda_test::gpu_required())                                                           \
        FAIL() << "KILN_REQUIRE_GPU=1 but no usable CUDA device: " << kiln_why_;                       \
      GTEST_SKIP() << "no CUDA device: " << kiln_why_;                                                 \
    }                                                                                                  \
  } while (0)

#define KILN_CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr << ": " << cudaGetErrorString(cudaGetLastError())

namespace kiln::cuda_test {

// The stream the kernel tests launch on: one created as the engine creates its streams (blocking),
// not the legacy default stream, so the tests see what a kernel does on the engine's streams. Made
// on first use, after KILN_REQUIRE_GPU().
inline Stream test_stream() {
  static cuda::CudaStream stream(0);
  return stream.view();
}

// Uniform in [lo, hi) excluding a band around zero (never all-zero inputs, no exact zeros).
inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  PhiloxGenerator gen(seed, 0xc0da);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = lo + (hi - lo) * gen.uniform();
    if (std::abs(x) < 1e-3f) x = 0.5f;
  }
  return v;
}

// A CUDA call in a helper: a failure is a test failure (non-fatal, so it works in any function),
// with the runtime's error string; the error is cleared so the next call starts clean.
inline bool cuda_ok(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return true;
  cudaGetLastError();
  ADD_FAILURE() << what << ": " << cudaGetErrorString(err);
  return false;
}

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (!cuda_ok(cudaMalloc(&ptr_, std::max<size_t>(n, 1) * sizeof(T)), "cudaMalloc")) ptr_ = nullptr;
    poison();
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return static_cast<T*>(ptr_); }
  size_t size() const { return n_; }
  // All bits set: NaN for float and bf16, -1 for integers.
  void poison() {
    if (ptr_) cuda_ok(cudaMemset(ptr_, 0xff, std::max<size_t>(n_, 1) * sizeof(T)), "poison (cudaMemset)");
  }
  void upload(const std::vector<T>& host) {
    if (ptr_) cuda_ok(cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  // Waits for all work on the device (any stream), then copies back. A failed kernel or copy is
  // a test failure naming the error, and the result is all-bits-set (NaN) so no check passes.
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (!ptr_ || !cuda_ok(cudaDeviceSynchronize(), "download: cudaDeviceSynchronize") ||
        !cuda_ok(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download: cudaMemcpy"))
      std::memset(static_cast<void*>(host.data()), 0xff, n_ * sizeof(T));
    return host;
  }

 private:
  void* ptr_ = nullptr;
  size_t n_;
};

inline float round_bf16(float x) { return __bfloat162float(__float2bfloat16(x)); }
inline std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16(v[i]);
  return out;
}

template <typename A, typename B>
double rel_error(const std::vector<A>& got, const std::vector<B>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (std::isnan(g) != std::isnan(w)) return std::numeric_limits<double>::infinity();
    if (std::isnan(w)) continue;
    num += (g - w) * (g - w);
    den += w * w;
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// TF32 as the tensor cores round it (cvt.rna.tf32.f32: 10 mantissa bits, to nearest, ties away
// from zero). Inputs rounded on the host are exact on the GPU, so a TF32 GEMM's only error is
// its fp32 accumulation and the tolerance can be tight.
inline float round_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&x, &u, sizeof u);
  return x;
}
inline void round_tf32_inplace(std::vector<float>& v) {
  for (auto& x : v) x = round_tf32(x);
}
inline void round_bf16_inplace(std::vector<float>& v) {
  for (auto& x : v) x = round_bf16(x);
}

// Per-element check: |got[i] - want[i]| <= tol * max(|want[i]|, floor) for every i, where the
// floor is the RMS of `want`. The floor is what keeps the check meaningful for an element that
// is near zero by cancellation: its error comes from accumulating terms of the typical size, so
// it is held to tol times the typical magnitude rather than to tol times itself. NaN where the
// reference has none (or the reverse) fails. The message names the worst element.
template <typename A, typename B>
::testing::AssertionResult close_elementwise(const std::vector<A>& got, const std::vector<B>& want, double tol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << ", want " << want.size();
  double sq = 0.0;
  size_t finite = 0;
  for (const auto& w : want)
    if (!std::isnan(static_cast<double>(w))) sq += static_cast<double>(w) * static_cast<double>(w), ++finite;
  const double floor = std::max(finite ? std::sqrt(sq / static_cast<double>(finite)) : 0.0, 1e-30);
  double worst = 0.0;
  size_t at = 0, bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    double e = 0.0;
    if (std::isnan(g) || std::isnan(w)) e = std::isnan(g) == std::isnan(w) ? 0.0 : std::numeric_limits<double>::infinity();
    else e = std::abs(g - w) / std::max(std::abs(w), floor);
    if (e > tol) ++bad;
    if (e > worst || (std::isinf(e) && !std::isinf(worst))) worst = e, at = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << got.size() << " elements off by more than " << tol
                                       << " (relative, floor " << floor << "); worst element " << at << ": got "
                                       << static_cast<double>(got[at]) << ", want " << static_cast<double>(want[at])
                                       << ", error " << worst;
}

// Tolerances against a double reference. fp32 kernels: norm-wise (rel_error). The tensor-core
// GEMM and convolution, with inputs rounded on the host to what the hardware multiplies (bf16,
// or tf32 via round_tf32), compute exact products and accumulate in fp32: per element
// (close_elementwise) within 1e-5 of max(|ref|, RMS of ref). A kernel that dropped a K step,
// read a wrong element or rounded an operand once more is off by far more.
constexpr double kTolFp32 = 1e-5;
constexpr double kTolTf32 = 1e-5;
constexpr double kTolBf16 = 1e-5;

}  // namespace kiln::cuda_test
