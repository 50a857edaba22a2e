// Device dispatch of kernels/loss.h (kernels/dispatch.h).
#include "kernels/loss.h"

#include "kernels/cpu/loss.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_library.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/loss.h"
#include "kernels/cuda/reference.h"
#endif

namespace kiln::kernels {

using detail::sim_arg;

template <typename T>
void softmax_cross_entropy_forward(const Stream& s, const T* logits, const int32_t* labels, int64_t batch,
                                   int64_t classes, T* probs, T* losses) {
  constexpr const char* kOp = "softmax_cross_entropy_forward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::softmax_cross_entropy_forward(s, logits, labels, batch, classes, probs, losses);
    case Device::Kind::sim:
      return detail::sim_launch(
          s,
          [=, logits = sim_arg(kOp, "logits", logits, batch * classes), labels = sim_arg(kOp, "labels", labels, batch),
           probs = sim_arg(kOp, "probs", probs, batch * classes), losses = sim_arg(kOp, "losses", losses, batch)] {
            cpu::softmax_cross_entropy_forward(Stream::cpu(), logits.get(), labels.get(), batch, classes, probs.get(),
                                               losses.get());
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    use_vendor("loss")
                        ? cuda::reference::softmax_cross_entropy_forward(s, logits, labels, batch, classes, probs, losses)
                        : cuda::softmax_cross_entropy_forward(s, logits, labels, batch, classes, probs, losses));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void softmax_cross_entropy_backward(const Stream& s, const T* probs, const int32_t* labels, int64_t batch,
                                    int64_t classes, T grad_scale, T* dlogits) {
  constexpr const char* kOp = "softmax_cross_entropy_backward";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      return cpu::softmax_cross_entropy_backward(s, probs, labels, batch, classes, grad_scale, dlogits);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, probs = sim_arg(kOp, "probs", probs, batch * classes), labels = sim_arg(kOp, "labels", labels, batch),
              dlogits = sim_arg(kOp, "dlogits", dlogits, batch * classes)] {
            cpu::softmax_cross_entropy_backward(Stream::cpu(), probs.get(), labels.get(), batch, classes, grad_scale,
                                                dlogits.get());
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    use_vendor("loss") ? cuda::reference::softmax_cross_entropy_backward(s, probs, labels, batch, classes,
                                                                                         grad_scale, dlogits)
                                       : cuda::softmax_cross_entropy_backward(s, probs, labels, batch, classes,
                                                                              grad_scale, dlogits));
  }
  detail::unknown_device(kOp, s);
}

namespace {

// The element-wise losses: (pred, target) -> out, n elements each, plus scalar arguments. `cpu_fn`
// and `cuda_fn` take (stream, pred, target, n, scalars..., out).
template <typename T, class CpuFn, class CudaFn, typename... Scalars>
void elementwise_loss(const char* op, const Stream& s, CpuFn cpu_fn, [[maybe_unused]] CudaFn cuda_fn, const T* pred,
                      const T* target, int64_t n, T* out, Scalars... scalars) {
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu_fn(s, pred, target, n, scalars..., out);
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, pred = sim_arg(op, "pred", pred, n), target = sim_arg(op, "target", target, n),
                                    out = sim_arg(op, "out", out, n)] {
        cpu_fn(Stream::cpu(), pred.get(), target.get(), n, scalars..., out.get());
      });
    case Device::Kind::cuda: KILN_CUDA_F32(op, T, s, cuda_fn(s, pred, target, n, scalars..., out));
  }
  detail::unknown_device(op, s);
}

#if KILN_HAVE_CUDA
// The element-wise losses are one thread per element already: VENDOR runs them as they are.
#define KILN_CUDA_LOSS(name) [](auto&&... a) { cuda::name(a...); }
#else
#define KILN_CUDA_LOSS(name) nullptr
#endif
#define KILN_LOSS(name) #name, s, [](auto&&... a) { cpu::name(a...); }, KILN_CUDA_LOSS(name)

}  // namespace

template <typename T>
void mse_forward(const Stream& s, const T* pred, const T* target, int64_t n, T* losses) {
  elementwise_loss(KILN_LOSS(mse_forward), pred, target, n, losses);
}
template <typename T>
void mse_backward(const Stream& s, const T* pred, const T* target, int64_t n, T grad_scale, T* dpred) {
  elementwise_loss(KILN_LOSS(mse_backward), pred, target, n, dpred, grad_scale);
}
template <typename T>
void huber_forward(const Stream& s, const T* pred, const T* target, int64_t n, T delta, T* losses) {
  elementwise_loss(KILN_LOSS(huber_forward), pred, target, n, losses, delta);
}
template <typename T>
void huber_backward(const Stream& s, const T* pred, const T* target, int64_t n, T delta, T grad_scale, T* dpred) {
  elementwise_loss(KILN_LOSS(huber_backward), pred, target, n, dpred, delta, grad_scale);
}
template <typename T>
void logistic_forward(const Stream& s, const T* logits, const T* target, int64_t n, T* losses) {
  elementwise_loss(KILN_LOSS(logistic_forward), logits, target, n, losses);
}
template <typename T>
void logistic_backward(const Stream& s, const T* logits, const T* target, int64_t n, T grad_scale, T* dlogits) {
  elementwise_loss(KILN_LOSS(logistic_backward), logits, target, n, dlogits, grad_scale);
}
#undef KILN_LOSS
#undef KILN_CUDA_LOSS

KILN_LOSS_INSTANTIATE(float)
KILN_LOSS_INSTANTIATE(double)

}  // namespace kiln::kernels
