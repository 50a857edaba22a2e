#pragma once
// One cuDNN handle per device, shared by the vendor kernels (vendor_conv.cu,
// vendor_batch_norm.cu) and held under a lock for each call, since a handle carries its stream.
// Only for builds with cuDNN (KILN_HAVE_CUDNN).
#include <cudnn.h>

#include <cstdint>
#include <map>
#include <mutex>

#include "core/cuda/stream.h"
#include "core/error.h"
#include "core/stream.h"
#include "kernels/cuda/device_info.h"

#define KILN_CUDNN_CHECK(expr)                                                                        \
  do {                                                                                                \
    cudnnStatus_t kiln_st_ = (expr);                                                                  \
    if (kiln_st_ != CUDNN_STATUS_SUCCESS)                                                             \
      ::kiln::fail(__FILE__, ":", __LINE__, ": ", #expr, ": ", cudnnGetErrorString(kiln_st_)); \
  } while (0)

namespace kiln::kernels::cuda {

// The device's handle, bound to `s`, locked while this lives.
class CudnnCall {
 public:
  explicit CudnnCall(const Stream& s) : entry_(entry(current_device())), lock_(entry_.mutex) {
    KILN_CHECK(s.device().is_cuda(), "cuDNN call on a ", s.device().to_string(), " stream");
    if (!entry_.handle) KILN_CUDNN_CHECK(cudnnCreate(&entry_.handle));
    KILN_CUDNN_CHECK(cudnnSetStream(entry_.handle, kiln::cuda::raw(s)));
  }
  cudnnHandle_t handle() const { return entry_.handle; }

 private:
  struct Entry {
    std::mutex mutex;
    cudnnHandle_t handle = nullptr;  // guarded by mutex
  };
  static Entry& entry(int device) {
    static std::mutex guard;
    static auto* entries = new std::map<int, Entry>();
    std::lock_guard<std::mutex> lock(guard);
    return (*entries)[device];
  }
  Entry& entry_;
  std::lock_guard<std::mutex> lock_;
};

// cuDNN takes int sizes: kiln::Error naming the op when one does not fit.
inline int cudnn_int(const char* op, const char* what, int64_t v) {
  if (v < 0 || v > INT32_MAX) fail(op, " with kernel_library VENDOR: ", what, " ", v, " exceeds cuDNN's int range");
  return static_cast<int>(v);
}

// A 4-D fp32 NHWC tensor descriptor, destroyed with this.
class CudnnTensor {
 public:
  CudnnTensor(const char* op, int64_t n, int64_t c, int64_t h, int64_t w) {
    KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d_));
    KILN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d_, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, cudnn_int(op, "n", n),
                                                cudnn_int(op, "channels", c), cudnn_int(op, "height", h),
                                                cudnn_int(op, "width", w)));
  }
  CudnnTensor() { KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d_)); }
  ~CudnnTensor() { cudnnDestroyTensorDescriptor(d_); }
  CudnnTensor(const CudnnTensor&) = delete;
  CudnnTensor& operator=(const CudnnTensor&) = delete;
  cudnnTensorDescriptor_t get() const { return d_; }

 private:
  cudnnTensorDescriptor_t d_ = nullptr;
};

}  // namespace kiln::kernels::cuda
