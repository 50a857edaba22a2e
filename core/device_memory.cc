#include "core/device_memory.h"

#include <cstdio>
#include <cstring>

#include "core/device_memory_backend.h"
#include "core/error.h"
#include "core/sim/sim_copy.h"
#include "core/sim/sim_event.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"

namespace kiln {

struct DeviceStream::Impl {
  std::unique_ptr<sim::SimStream> sim;
  void* cuda = nullptr;
  ~Impl() {
    if (cuda) cuda_memory::stream_destroy(cuda);
  }
};

DeviceStream::DeviceStream(const Device& device) : impl_(std::make_unique<Impl>()) {
  switch (device.kind) {
    case Device::Kind::cpu: view_ = Stream::cpu(); break;
    case Device::Kind::sim:
      impl_->sim = std::make_unique<sim::SimStream>(device.index);
      view_ = impl_->sim->view();
      break;
    case Device::Kind::cuda:
      impl_->cuda = cuda_memory::stream_create(device.index);
      view_ = Stream::cuda(device.index, impl_->cuda);
      break;
  }
}

DeviceStream::~DeviceStream() = default;

StreamDrain::~StreamDrain() {
  if (!stream_) return;
  try {
    stream_->synchronize();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: work left on %s failed: %s\n", stream_->device().to_string().c_str(), e.what());
  }
}

struct DeviceEvent::Impl {
  Device device;
  sim::SimEvent sim;
  void* cuda = nullptr;
  bool recorded = false;
  ~Impl() {
    if (cuda) cuda_memory::event_destroy(cuda);
  }
};

DeviceEvent::DeviceEvent(const Device& device) : impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  if (device.is_cuda()) impl_->cuda = cuda_memory::event_create(device.index);
}

DeviceEvent::~DeviceEvent() = default;

void DeviceEvent::record(const Stream& s) {
  KILN_CHECK(s.device() == impl_->device, "event of ", impl_->device.to_string(), " recorded on ",
             s.device().to_string());
  impl_->recorded = true;
  switch (s.device().kind) {
    case Device::Kind::cpu: return;
    case Device::Kind::sim: return impl_->sim.record(sim::SimStream::from(s));
    case Device::Kind::cuda: return cuda_memory::event_record(impl_->cuda, s.handle());
  }
}

void DeviceEvent::make_wait(const Stream& s) const {
  if (!impl_->recorded) return;
  switch (s.device().kind) {
    case Device::Kind::cpu: return;
    case Device::Kind::sim: return sim::wait_on_event(sim::SimStream::from(s), impl_->sim);
    case Device::Kind::cuda: return cuda_memory::event_make_wait(impl_->cuda, s.handle());
  }
}

void DeviceEvent::synchronize() const {
  if (!impl_->recorded) return;
  switch (impl_->device.kind) {
    case Device::Kind::cpu: return;
    case Device::Kind::sim: return impl_->sim.synchronize();
    case Device::Kind::cuda: return cuda_memory::event_synchronize(impl_->cuda);
  }
}

namespace {
// The tensor must live on the host or on the stream's device.
void check_side(const Stream& s, const Tensor& t, const char* which) {
  KILN_CHECK(t.device().is_cpu() || t.device() == s.device(), "copy ", which, " on ", t.device().to_string(),
             " with a stream of ", s.device().to_string());
}
}  // namespace

void copy_async(const Stream& s, const Tensor& dst, const Tensor& src) {
  KILN_CHECK(dst.bytes() == src.bytes(), "copy of ", src.bytes(), " bytes into ", dst.bytes());
  check_side(s, dst, "destination");
  check_side(s, src, "source");
  const size_t n = src.bytes();
  if (n == 0) return;
  const bool dst_host = dst.device().is_cpu(), src_host = src.device().is_cpu();
  switch (s.device().kind) {
    case Device::Kind::cpu: std::memmove(dst.raw(), src.raw(), n); return;
    case Device::Kind::sim: {
      sim::SimStream& stream = sim::SimStream::from(s);
      if (dst_host && src_host)
        stream.enqueue_copy([d = dst, from = src, n] { std::memmove(d.raw(), from.raw(), n); });
      else if (src_host)
        sim::copy_host_to_device_async(stream, dst.raw(), src.raw(), n);
      else if (dst_host)
        sim::copy_device_to_host_async(stream, dst.raw(), src.raw(), n);
      else
        sim::copy_device_to_device_async(stream, dst.raw(), src.raw(), n);
      return;
    }
    case Device::Kind::cuda: return cuda_memory::copy_async(dst.raw(), src.raw(), n, s.handle());
  }
}

void copy_sync(const Stream& s, const Tensor& dst, const Tensor& src) {
  copy_async(s, dst, src);
  s.synchronize();
}

void copy_rows_async(const Stream& s, void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                     size_t rows) {
  switch (s.device().kind) {
    case Device::Kind::cpu:
      for (size_t r = 0; r < rows; ++r)
        std::memcpy(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, width);
      return;
    case Device::Kind::sim: {
      if (!width || !rows) return;
      // Checked now, for the whole extent, and untagged when the stream runs it.
      sim::SimStream& stream = sim::SimStream::from(s);
      const size_t dst_extent = (rows - 1) * dst_pitch + width, src_extent = (rows - 1) * src_pitch + width;
      sim::sim_memory().untag(dst, dst_extent);
      sim::sim_memory().untag(src, src_extent);
      stream.enqueue_copy([=] {
        char* d = static_cast<char*>(sim::sim_memory().untag(dst, dst_extent));
        const char* f = static_cast<const char*>(sim::sim_memory().untag(src, src_extent));
        for (size_t r = 0; r < rows; ++r) std::memcpy(d + r * dst_pitch, f + r * src_pitch, width);
      });
      return;
    }
    case Device::Kind::cuda: return cuda_memory::copy_rows_async(dst, dst_pitch, src, src_pitch, width, rows, s.handle());
  }
}

void zero_async(const Stream& s, const Tensor& t) {
  KILN_CHECK(t.device() == s.device(), "fill of a tensor on ", t.device().to_string(), " with a stream of ",
             s.device().to_string());
  if (t.bytes() == 0) return;
  switch (s.device().kind) {
    case Device::Kind::cpu: std::memset(t.raw(), 0, t.bytes()); return;
    case Device::Kind::sim: return sim::memset_async(sim::SimStream::from(s), t.raw(), 0, t.bytes());
    case Device::Kind::cuda: return cuda_memory::memset_async(t.raw(), 0, t.bytes(), s.handle());
  }
}

Tensor to_host(const Stream& s, const Tensor& t) {
  if (!t.defined() || t.device().is_cpu()) return t;
  Tensor host = Tensor::empty(t.shape(), t.dtype());
  copy_sync(s, host, t);
  return host;
}

Tensor zeros_on(const Stream& s, const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype, s.device());
  zero_async(s, t);
  return t;
}

Tensor staging_empty(const Shape& shape, DType dtype, const Device& device) {
  if (!device.is_cuda()) return Tensor::empty(shape, dtype);
  size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  return Tensor(std::make_shared<Buffer>(cuda_memory::pinned_allocator(), bytes), 0, shape, dtype);
}

}  // namespace kiln
