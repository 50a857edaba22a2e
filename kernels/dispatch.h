#pragma once
// How a kernels::op runs on the stream's device, in one place per op (kernels/<op>.cc):
//
//   switch (s.device().kind) {
//     case Device::Kind::cpu: return cpu::op(s, ...);                // synchronous, as always
//     case Device::Kind::sim:                                          // queued on the SimStream
//       return detail::sim_launch(s, [=, x = detail::sim_arg(kOp, "x", x, n)] {
//         cpu::op(Stream::cpu(), ..., x.get(), ...);
//       });
//     case Device::Kind::cuda: KILN_CUDA_F32(kOp, T, s, cuda::op(s, ...));
//   }
//
// cpu: kernels/cpu/<op>.cc, namespace kiln::kernels::cpu, called directly on the calling thread.
// sim: the same CPU code, run by the stream's worker on host views of the sim pointers. sim_arg
// checks each pointer argument for the extent the op reads or writes when the op is called (a
// host pointer, a range past the end or a freed block throws kiln::Error naming the op there) and
// again when the stream runs it (a block freed in between fails the task; the error, naming the
// op, comes out of the next synchronize()). Arguments are captured by value.
// cuda: kernels/cuda/<op>.cu, f32 only; other element types, and ops with no CUDA kernel, throw
// kiln::Error naming the op and the device. A build without CUDA throws for every cuda stream.
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "core/stream.h"

namespace kiln::kernels::detail {

// kiln::Error: this build has no CUDA backend.
[[noreturn]] void cuda_not_built(const char* op, const Stream& s);
// kiln::Error: the CUDA backend has no kernel for this op or this variant of it (`why`); in a build
// without CUDA, cuda_not_built.
[[noreturn]] void no_cuda_kernel(const char* op, const Stream& s, const char* why);
// kiln::Error: the CUDA kernels take f32 only.
[[noreturn]] void cuda_f32_only(const char* op, const Stream& s, const char* dtype);
// kiln::InternalError: a Device::Kind the op does not know.
[[noreturn]] void unknown_device(const char* op, const Stream& s);

template <typename T>
constexpr const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "f32";
  if constexpr (std::is_same_v<T, double>) return "f64";
  return "this element type";
}

// The host address of [ptr, ptr + bytes) in sim memory; kiln::Error naming the op and the
// argument when the range is not inside one live allocation.
void* sim_untag(const char* op, const char* name, const void* ptr, int64_t count, size_t elem_bytes);

// A pointer argument of a sim launch: `count` elements at `ptr`, checked now, untagged by get()
// when the stream runs the op. A null pointer is an absent optional argument (bias, dbias, ...):
// it stays null, and the CPU code decides whether the op allows it.
template <typename T>
class SimArg {
 public:
  SimArg(const char* op, const char* name, T* ptr, int64_t count) : op_(op), name_(name), ptr_(ptr), count_(count) {
    get();
  }
  // The host view for the extent given at the call.
  T* get() const { return get(count_); }
  // For an extent only known on the device (CSR ids: offsets[batch] entries).
  T* get(int64_t count) const {
    return ptr_ ? static_cast<T*>(sim_untag(op_, name_, ptr_, count, sizeof(T))) : nullptr;
  }

 private:
  const char* op_;
  const char* name_;
  T* ptr_;
  int64_t count_;
};

template <typename T>
SimArg<T> sim_arg(const char* op, const char* name, T* ptr, int64_t count) {
  return SimArg<T>(op, name, ptr, count);
}

// Elements from the first to the last one a row-major [rows, cols] matrix with row stride ld
// touches (the last row needs only cols of them).
inline int64_t matrix_extent(int64_t rows, int64_t cols, int64_t ld) {
  return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols;
}

// offsets[batch] (the number of CSR ids) of device-resident offsets, read back with a synchronous
// copy on the CUDA stream s.
int64_t cuda_read_nnz(const Stream& s, const int64_t* offsets, int64_t batch);

// Queues `body` on the sim stream behind `s`; returns at once.
void sim_enqueue(const Stream& s, std::function<void()> body);

template <class F>
void sim_launch(const Stream& s, F body) {
  sim_enqueue(s, std::function<void()>(std::move(body)));
}

// sim_launch for an op whose result the host reads: queues `body` (which returns the result),
// synchronizes the stream and returns what body returned.
template <class F>
auto sim_launch_sync(const Stream& s, F body) -> decltype(body()) {
  using R = decltype(body());
  auto result = std::make_shared<R>();
  sim_launch(s, [result, body = std::move(body)] { *result = body(); });
  s.synchronize();
  return *result;
}

}  // namespace kiln::kernels::detail

// The CUDA case of a dispatch: `return <the call>` for T = float, else the f32-only error; the not-built error
// in a build without CUDA.
#if KILN_HAVE_CUDA
#define KILN_CUDA_F32(op, T, s, ...)                                                           \
  do {                                                                                         \
    if constexpr (std::is_same_v<T, float>) {                                                  \
      return __VA_ARGS__;                                                                      \
    } else {                                                                                   \
      ::kiln::kernels::detail::cuda_f32_only(op, s, ::kiln::kernels::detail::dtype_name<T>()); \
    }                                                                                          \
  } while (0)
#else
#define KILN_CUDA_F32(op, T, s, ...) ::kiln::kernels::detail::cuda_not_built(op, s)
#endif
