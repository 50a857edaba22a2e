// models/device_config.h: the precision a config asks for, resolved for a device.
#include <gtest/gtest.h>

#include "core/error.h"
#include "models/device_config.h"

namespace kiln::models {
namespace {

TEST(DeviceConfig, TrainingPrecisionDefaultsPerDeviceAndRefusesFp32OnCuda) {
  EXPECT_EQ(training_precision(Precision::DEFAULT, Device::cpu()), MathPrecision::fp32);
  EXPECT_EQ(training_precision(Precision::DEFAULT, Device::sim()), MathPrecision::fp32);
  EXPECT_EQ(training_precision(Precision::DEFAULT, Device::cuda(0)), MathPrecision::tf32);
  EXPECT_EQ(training_precision(Precision::BF16, Device::cpu()), MathPrecision::bf16);
  EXPECT_EQ(training_precision(Precision::TF32, Device::sim()), MathPrecision::tf32);
  try {
    training_precision(Precision::FP32, Device::cuda(0));
    ADD_FAILURE() << "FP32 on CUDA accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("precision: FP32 is not available on CUDA"), std::string::npos) << e.what();
  }
}

TEST(DeviceConfig, ServingPrecisionFollowsTheExportUnlessAsked) {
  EXPECT_EQ(serving_precision(Precision::DEFAULT, Precision::BF16, Device::cpu()), MathPrecision::bf16);
  EXPECT_EQ(serving_precision(Precision::FP32, Precision::BF16, Device::sim()), MathPrecision::fp32);
  // An FP32 export serves as TF32 on CUDA, where there is no fp32 path; asking for FP32 there fails.
  EXPECT_EQ(serving_precision(Precision::DEFAULT, Precision::FP32, Device::cuda(0)), MathPrecision::tf32);
  EXPECT_THROW(serving_precision(Precision::FP32, Precision::TF32, Device::cuda(0)), Error);
  EXPECT_EQ(precision_kind(MathPrecision::bf16), Precision::BF16);
}

}  // namespace
}  // namespace kiln::models
