#include "models/device_config.h"

#include "core/device_choice.h"
#include "core/error.h"

namespace kiln::models {

Device configured_device(DeviceChoice::Kind kind, int index, const std::string& how_to_choose) {
  switch (kind) {
    case DeviceChoice::CPU: return choose_device(Device::Kind::cpu, index, how_to_choose);
    case DeviceChoice::CUDA: return choose_device(Device::Kind::cuda, index, how_to_choose);
    case DeviceChoice::SIM: return choose_device(Device::Kind::sim, index, how_to_choose);
  }
  fail("unknown device ", static_cast<int>(kind), "; ", how_to_choose);
}

namespace {
MathPrecision math_of(Precision::Kind kind) {
  switch (kind) {
    case Precision::TF32: return MathPrecision::tf32;
    case Precision::BF16: return MathPrecision::bf16;
    case Precision::DEFAULT:
    case Precision::FP32: break;
  }
  return MathPrecision::fp32;
}
}  // namespace

MathPrecision training_precision(Precision::Kind kind, const Device& device) {
  if (kind == Precision::DEFAULT) return device.is_cuda() ? MathPrecision::tf32 : MathPrecision::fp32;
  return math_of(kind);
}

MathPrecision serving_precision(Precision::Kind requested, Precision::Kind exported, const Device& /*device*/) {
  // Every device runs every precision (on CUDA, FP32 through cuBLASLt, cuDNN and the reference
  // kernels: kernels/cuda_route.h), so an FP32 export serves at FP32 there too.
  return math_of(requested != Precision::DEFAULT ? requested : exported);
}

Precision::Kind precision_kind(MathPrecision p) {
  switch (p) {
    case MathPrecision::fp32: return Precision::FP32;
    case MathPrecision::tf32: return Precision::TF32;
    case MathPrecision::bf16: return Precision::BF16;
  }
  return Precision::FP32;
}

}  // namespace kiln::models
