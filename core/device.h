#pragma once
#include <string>

namespace kiln {

// Where memory lives and kernels run. `sim` is a simulated GPU (core/sim/): memory the host
// cannot dereference, streams that run the CPU kernels in order on worker threads; it is always
// built, so the device path is exercised without a GPU.
struct Device {
  enum class Kind { cpu, cuda, sim };
  Kind kind = Kind::cpu;
  int index = 0;

  static Device cpu() { return {Kind::cpu, 0}; }
  static Device cuda(int index) { return {Kind::cuda, index}; }
  static Device sim(int index = 0) { return {Kind::sim, index}; }
  bool is_cpu() const { return kind == Kind::cpu; }
  bool is_cuda() const { return kind == Kind::cuda; }
  bool is_sim() const { return kind == Kind::sim; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  // "cpu", "cuda:1", "sim" (the first sim device), "sim:1".
  std::string to_string() const {
    switch (kind) {
      case Kind::cpu: return "cpu";
      case Kind::cuda: return "cuda:" + std::to_string(index);
      case Kind::sim: return index == 0 ? "sim" : "sim:" + std::to_string(index);
    }
    return "unknown device";
  }
};

// Number of CUDA devices usable by this process; 0 when built without CUDA or without a GPU.
int cuda_device_count();

}  // namespace kiln
