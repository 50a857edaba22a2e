#include "models/input_staging.h"

#include <cstring>

#include "core/error.h"

namespace kiln::models {

struct InputStaging::Slot {
  explicit Slot(const Device& d) : copied(d), computed(d) {}
  std::vector<Tensor> pinned, device;  // per tensor, grown to fit
  DeviceEvent copied;    // on the copy stream: this slot's device buffers hold the batch
  DeviceEvent computed;  // on the compute stream: the work reading them is done
};

InputStaging::InputStaging(const Stream& compute) : compute_(compute) {
  if (compute.device().is_cpu()) return;
  copy_ = std::make_unique<DeviceStream>(compute.device());
  for (int i = 0; i < 2; ++i) slots_.push_back(std::make_unique<Slot>(compute.device()));
}

InputStaging::~InputStaging() {
  // The streams may still read the slots' buffers. An error of theirs is the owner's to report.
  if (!copy_) return;
  try {
    copy_->synchronize();
    compute_.synchronize();
  } catch (const std::exception&) {
  }
}

namespace {
// A view of exactly `like`'s shape and dtype in `buffer`, grown when it is too small.
Tensor fit(Tensor& buffer, const Tensor& like, const Device& device, bool pinned) {
  if (!buffer.defined() || buffer.bytes() < like.bytes()) {
    const int64_t bytes = static_cast<int64_t>(like.bytes());
    buffer = pinned ? staging_empty(Shape{bytes}, DType::u8, device) : Tensor::empty(Shape{bytes}, DType::u8, device);
  }
  return Tensor(buffer.buffer(), 0, like.shape(), like.dtype());
}
}  // namespace

std::vector<Tensor> InputStaging::stage(const std::vector<Tensor>& host) {
  if (!copy_) return host;
  Slot& slot = *slots_[staged_ % 2];
  ++staged_;
  // The host rewrites the pinned buffers only after their last copy ran, and the copy stream
  // overwrites the device buffers only after the compute that read them.
  slot.copied.synchronize();
  slot.computed.make_wait(copy_->view());
  slot.pinned.resize(host.size());
  slot.device.resize(host.size());
  std::vector<Tensor> out(host.size());
  for (size_t i = 0; i < host.size(); ++i) {
    const Tensor& h = host[i];
    if (!h.defined()) continue;
    KILN_CHECK(h.device().is_cpu(), "staging a tensor that is already on ", h.device().to_string());
    if (slot.device[i].defined() && slot.device[i].bytes() < h.bytes()) {
      // Growing frees the old buffer at once: nothing may still read it.
      slot.computed.synchronize();
      copy_->synchronize();
    }
    Tensor pinned = fit(slot.pinned[i], h, compute_.device(), true);
    std::memcpy(pinned.raw(), h.raw(), h.bytes());
    out[i] = fit(slot.device[i], h, compute_.device(), false);
    copy_async(copy_->view(), out[i], pinned);
  }
  slot.copied.record(copy_->view());
  slot.copied.make_wait(compute_);
  return out;
}

void InputStaging::release() {
  if (!copy_ || staged_ == 0) return;
  slots_[(staged_ - 1) % 2]->computed.record(compute_);
}

}  // namespace kiln::models
