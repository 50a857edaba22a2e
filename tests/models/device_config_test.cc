// models/device_config.h: the precision a config asks for, resolved for a device.
#include <gtest/gtest.h>

#include "models/device_config.h"

namespace kiln::models {
namespace {

TEST(DeviceConfig, TrainingPrecisionDefaultsPerDeviceAndTakesFp32OnCuda) {
  EXPECT_EQ(training_precision(Precision::DEFAULT, Device::cpu()), MathPrecision::fp32);
  EXPECT_EQ(training_precision(Precision::DEFAULT, Device::sim()), MathPrecision::fp32);
  EXPECT_EQ(training_precision(Precision::DEFAULT, Device::cuda(0)), MathPrecision::tf32);
  EXPECT_EQ(training_precision(Precision::BF16, Device::cpu()), MathPrecision::bf16);
  EXPECT_EQ(training_precision(Precision::TF32, Device::sim()), MathPrecision::tf32);
  // FP32 on CUDA runs through cuBLASLt, cuDNN and the reference kernels (kernels/cuda_route.h).
  EXPECT_EQ(training_precision(Precision::FP32, Device::cuda(0)), MathPrecision::fp32);
}

TEST(DeviceConfig, ServingPrecisionFollowsTheExportUnlessAsked) {
  EXPECT_EQ(serving_precision(Precision::DEFAULT, Precision::BF16, Device::cpu()), MathPrecision::bf16);
  EXPECT_EQ(serving_precision(Precision::FP32, Precision::BF16, Device::sim()), MathPrecision::fp32);
  // An FP32 export serves at FP32 on CUDA too, and FP32 may be asked for there.
  EXPECT_EQ(serving_precision(Precision::DEFAULT, Precision::FP32, Device::cuda(0)), MathPrecision::fp32);
  EXPECT_EQ(serving_precision(Precision::FP32, Precision::TF32, Device::cuda(0)), MathPrecision::fp32);
  EXPECT_EQ(serving_precision(Precision::DEFAULT, Precision::TF32, Device::cuda(0)), MathPrecision::tf32);
  EXPECT_EQ(precision_kind(MathPrecision::bf16), Precision::BF16);
}

}  // namespace
}  // namespace kiln::models
