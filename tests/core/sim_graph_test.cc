// DeviceGraph on the sim device (core/device_graph.h): captured work runs again on launch with the
// memory it was captured with, and what CUDA forbids during a capture throws.
#include <gtest/gtest.h>

#include <vector>

#include "core/device_graph.h"
#include "core/device_memory.h"
#include "core/error.h"

namespace kiln {
namespace {

TEST(SimGraph, LaunchRepeatsTheCapturedWorkOnTheSameMemory) {
  DeviceStream stream(Device::sim());
  const Stream& s = stream.view();
  Tensor host = Tensor::empty(Shape{4}, DType::f32);
  Tensor dev = Tensor::empty(Shape{4}, DType::f32, s.device());
  Tensor out = Tensor::empty(Shape{4}, DType::f32, s.device());
  DeviceGraph::begin_capture(s);
  copy_async(s, out, dev);  // recorded, not run
  DeviceGraph graph = DeviceGraph::end_capture(s);
  for (float v : {1.0f, 2.0f}) {
    for (int i = 0; i < 4; ++i) host.data<float>()[i] = v * static_cast<float>(i);
    copy_sync(s, dev, host);  // the input rewritten in place before each launch
    graph.launch(s);
    const Tensor got = to_host(s, out);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got.data<float>()[i], v * static_cast<float>(i));
  }
}

TEST(SimGraph, SynchronizeAndAllocationDuringCaptureThrow) {
  DeviceStream stream(Device::sim());
  const Stream& s = stream.view();
  DeviceGraph::begin_capture(s);
  EXPECT_THROW(s.synchronize(), Error);
  EXPECT_THROW(Tensor::empty(Shape{4}, DType::f32, s.device()), Error);
  DeviceGraph::end_capture(s);
  EXPECT_NO_THROW(Tensor::empty(Shape{4}, DType::f32, s.device()));
  EXPECT_ANY_THROW(DeviceGraph().launch(s));
}

TEST(SimGraph, TheCpuHasNoGraphs) {
  EXPECT_FALSE(DeviceGraph::supported(Stream::cpu()));
  EXPECT_THROW(DeviceGraph::begin_capture(Stream::cpu()), Error);
}

}  // namespace
}  // namespace kiln
