#pragma once
// Moves host batches to the model's device. Each batch's tensors are copied into a page-locked
// host slot, then, on a copy stream of their own, into device buffers; the compute stream waits for
// that copy with an event. Two slots alternate, so the copy of the next batch runs while the
// device still computes on this one, and a slot is refilled only after the compute that read it
// is done (the host waits for its copy, the copy stream for its compute). On the CPU the host
// tensors are used as they are: no copy at all.
#include <memory>
#include <vector>

#include "core/device_memory.h"
#include "core/tensor.h"

namespace kiln::models {

class InputStaging {
 public:
  // `compute` is the stream that reads the staged tensors; it must outlive this.
  explicit InputStaging(const Stream& compute);
  ~InputStaging();
  InputStaging(const InputStaging&) = delete;
  InputStaging& operator=(const InputStaging&) = delete;

  // Device copies of `host` (CPU tensors; undefined ones stay undefined), ready for work queued
  // on the compute stream after this call. They stay valid until the next stage() but one.
  std::vector<Tensor> stage(const std::vector<Tensor>& host);
  // Marks that every use of the tensors the last stage() returned is queued on the compute stream
  // (call it before the next stage()); their slot is reused once the device has done that work.
  void release();

 private:
  struct Slot;
  Stream compute_;
  std::unique_ptr<DeviceStream> copy_;
  std::vector<std::unique_ptr<Slot>> slots_;
  int64_t staged_ = 0;  // batches staged so far; the last one is in slot (staged_ - 1) % 2
};

}  // namespace kiln::models
