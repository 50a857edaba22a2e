// Convolution benchmark: Kiln's implicit-GEMM conv2d (forward, data grad, weight grad) in NHWC,
// TF32 and BF16, on the Fashion-MNIST CNN's layers and ResNet-50-like 3x3 layers. The cuDNN peer
// is measured by bench/gpu_peers.py (PyTorch channels_last, which runs cuDNN) in the same
// gpu_check run. Usage: kiln_bench_gpu_conv
#include <cuda_bf16.h>

#include <cstdio>
#include <vector>

#include "bench/gpu_bench_util.cuh"
#include "core/cuda/check.h"
#include "core/stream.h"
#include "kernels/cuda/conv.h"

namespace kiln::bench {

__global__ void fill_conv(float* p, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = 0.001f * static_cast<float>(i % 1913) - 0.9f;
}
__global__ void fill_conv_bf16(__nv_bfloat16* p, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(0.001f * static_cast<float>(i % 1913) - 0.9f);
}

template <typename E>
void run(const char* name, const kernels::Conv2dShape& c) {
  cudaStream_t stream;
  KILN_CUDA_CHECK(cudaStreamCreate(&stream));
  const Stream s = Stream::cuda(0, stream);
  const size_t xs = c.n * c.h * c.w * c.c_in, ws = c.kh * c.kw * c.c_in * c.c_out,
               ys = c.n * c.out_h() * c.out_w() * c.c_out;
  E *x, *w, *dy;
  float *y, *dx, *dw;
  KILN_CUDA_CHECK(cudaMalloc(&x, xs * sizeof(E)));
  KILN_CUDA_CHECK(cudaMalloc(&w, ws * sizeof(E)));
  KILN_CUDA_CHECK(cudaMalloc(&dy, ys * sizeof(E)));
  KILN_CUDA_CHECK(cudaMalloc(&y, ys * sizeof(float)));
  KILN_CUDA_CHECK(cudaMalloc(&dx, xs * sizeof(float)));
  KILN_CUDA_CHECK(cudaMalloc(&dw, ws * sizeof(float)));
  for (auto [p, n] : {std::pair<E*, size_t>{x, xs}, {w, ws}, {dy, ys}}) {
    if constexpr (sizeof(E) == 2)
      fill_conv_bf16<<<1024, 256, 0, stream>>>(p, n);
    else
      fill_conv<<<1024, 256, 0, stream>>>(p, n);
  }
  KILN_CUDA_CHECK(cudaGetLastError());
  const double flop = 2.0 * ys * c.kh * c.kw * c.c_in;
  const double f = median_ms(stream, [&] { kernels::cuda::conv2d_forward<E>(s, c, x, w, nullptr, y); });
  const double d = median_ms(stream, [&] { kernels::cuda::conv2d_backward_data<E>(s, c, dy, w, dx); });
  const double g = median_ms(stream, [&] {
    kernels::cuda::conv2d_backward_weight<E>(s, c, x, dy, dw, nullptr, nullptr, false);
  });
  const char* type = sizeof(E) == 2 ? "bf16" : "tf32";
  std::printf("conv %-12s %-4s fwd %7.3f ms %6.1f TF/s  dgrad %7.3f ms %6.1f TF/s  wgrad %7.3f ms %6.1f TF/s\n", name,
              type, f, flop / f / 1e9, d, flop / d / 1e9, g, flop / g / 1e9);
  std::printf("RESULT bench=conv layer=%s type=%s fwd_ms=%.4f dgrad_ms=%.4f wgrad_ms=%.4f\n", name, type, f, d, g);
  std::fflush(stdout);
  for (void* p : {(void*)x, (void*)w, (void*)dy, (void*)y, (void*)dx, (void*)dw}) cudaFree(p);
  cudaStreamDestroy(stream);
}

}  // namespace kiln::bench

int main() {
  using kiln::kernels::Conv2dShape;
  // Keep in step with bench/gpu_peers.py (CONV_LAYERS).
  auto shape = [](int64_t n, int64_t hw, int64_t ci, int64_t co, int64_t k, int64_t stride, int64_t pad) {
    Conv2dShape c;
    c.n = n, c.h = hw, c.w = hw, c.c_in = ci, c.c_out = co, c.kh = k, c.kw = k;
    c.stride_h = c.stride_w = stride, c.pad_h = c.pad_w = pad;
    return c;
  };
  const std::vector<std::pair<const char*, Conv2dShape>> layers = {
      {"fmnist_c1", shape(256, 28, 1, 32, 3, 1, 1)},  {"fmnist_c2", shape(256, 14, 32, 64, 3, 1, 1)},
      {"resnet_56", shape(32, 56, 64, 64, 3, 1, 1)},  {"resnet_28", shape(32, 28, 128, 128, 3, 1, 1)},
      {"resnet_14", shape(32, 14, 256, 256, 3, 1, 1)}, {"resnet_7", shape(32, 7, 512, 512, 3, 1, 1)}};
  try {
    for (const auto& [name, c] : layers) {
      kiln::bench::run<__nv_bfloat16>(name, c);
      kiln::bench::run<float>(name, c);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_conv failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
