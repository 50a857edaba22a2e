// The CUDA entry points of core/: compiled whenever the CUDA backend is built, skipped where no
// GPU exists.
#include <gtest/gtest.h>

#include "core/device.h"
#include "core/tensor.h"

#ifdef KILN_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace kiln {
namespace {

TEST(CudaDevice, AllocatesAndCopiesWhenAGpuExists) {
#ifndef KILN_HAVE_CUDA
  GTEST_SKIP() << "built without the CUDA backend";
#else
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Tensor host = Tensor::empty(Shape{1000}, DType::f32);
  for (int i = 0; i < 1000; ++i) host.data<float>()[i] = static_cast<float>(i) * 0.5f;
  Tensor dev = Tensor::empty(Shape{1000}, DType::f32, Device::cuda(0));
  EXPECT_TRUE(dev.device().is_cuda());
  ASSERT_EQ(cudaMemcpy(dev.raw(), host.raw(), host.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
  Tensor back = Tensor::zeros(Shape{1000}, DType::f32);
  ASSERT_EQ(cudaMemcpy(back.raw(), dev.raw(), host.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(0, std::memcmp(back.raw(), host.raw(), host.bytes()));
#endif
}

TEST(CudaDevice, MissingDeviceIsAnError) {
  EXPECT_THROW(Tensor::empty(Shape{4}, DType::f32, Device::cuda(cuda_device_count() + 3)), Error);
}

}  // namespace
}  // namespace kiln
