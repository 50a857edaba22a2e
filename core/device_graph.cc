#include "core/device_graph.h"

#include <vector>

#include "core/device_memory_backend.h"
#include "core/error.h"
#include "core/sim/sim_stream.h"

namespace kiln {

struct DeviceGraph::Impl {
  Device device;
  std::vector<sim::SimStream::Recorded> sim;
  void* cuda = nullptr;  // the exec and its memory pool (core/cuda/device_memory.cu)
  ~Impl() {
    if (cuda) cuda_memory::graph_destroy(cuda);
  }
};

DeviceGraph::DeviceGraph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceGraph::DeviceGraph() = default;
DeviceGraph::~DeviceGraph() = default;
DeviceGraph::DeviceGraph(DeviceGraph&&) noexcept = default;
DeviceGraph& DeviceGraph::operator=(DeviceGraph&&) noexcept = default;

void DeviceGraph::begin_capture(const Stream& s) {
  switch (s.device().kind) {
    case Device::Kind::cpu: fail("the CPU has no graphs to capture");
    case Device::Kind::sim: return sim::SimStream::from(s).begin_capture();
    case Device::Kind::cuda: return cuda_memory::graph_begin_capture(s.device().index, s.handle());
  }
}

DeviceGraph DeviceGraph::end_capture(const Stream& s) {
  auto impl = std::make_unique<Impl>();
  impl->device = s.device();
  switch (s.device().kind) {
    case Device::Kind::cpu: fail("the CPU has no graphs to capture");
    case Device::Kind::sim: impl->sim = sim::SimStream::from(s).end_capture(); break;
    case Device::Kind::cuda: impl->cuda = cuda_memory::graph_end_capture(s.device().index, s.handle()); break;
  }
  return DeviceGraph(std::move(impl));
}

void DeviceGraph::launch(const Stream& s) const {
  KILN_CHECK(impl_, "launch of an empty graph");
  KILN_CHECK(s.device() == impl_->device, "a graph of ", impl_->device.to_string(), " launched on ",
             s.device().to_string());
  switch (s.device().kind) {
    case Device::Kind::cpu: return;
    case Device::Kind::sim: return sim::SimStream::from(s).replay(impl_->sim);
    case Device::Kind::cuda: return cuda_memory::graph_launch(impl_->cuda, s.handle());
  }
}

}  // namespace kiln
