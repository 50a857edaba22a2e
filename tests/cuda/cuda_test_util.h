#pragma once
// Helpers of the CUDA kernel tests: skip without a GPU, device buffers that are poisoned (NaN)
// before every run, bf16/tf32 rounding on the host, and a norm-wise relative error against a
// double reference: ||got - want|| / ||want||, infinite when any element is NaN.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/device.h"
#include "core/philox.h"

#define KILN_REQUIRE_GPU()                                              \
  do {                                                                  \
    if (::kiln::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

#define KILN_CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr << ": " << cudaGetErrorString(cudaGetLastError())

namespace kiln::cuda_test {

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

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (cudaMalloc(&ptr_, std::max<size_t>(n, 1) * sizeof(T)) != cudaSuccess) ptr_ = nullptr;
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
    if (ptr_) cudaMemset(ptr_, 0xff, std::max<size_t>(n_, 1) * sizeof(T));
  }
  void upload(const std::vector<T>& host) {
    cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    cudaDeviceSynchronize();
    cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
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

// Relative-error bounds by precision (against a double reference).
constexpr double kTolFp32 = 1e-5;
constexpr double kTolTf32 = 2e-3;
constexpr double kTolBf16 = 1e-2;

}  // namespace kiln::cuda_test
