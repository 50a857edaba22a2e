// The calling thread's current device (core/current_device.h) on the sim: as CUDA, a kernel
// queued to another device's stream fails, a copy does not, and a fresh thread starts on device 0.
// CTest label: sim.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "core/current_device.h"
#include "core/error.h"
#include "core/sim/sim_copy.h"
#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"

namespace kiln::sim {
namespace {

// Leaves the test thread on sim:0 whatever a test did.
struct BackToDeviceZero {
  ~BackToDeviceZero() { make_device_current(Device::sim(0)); }
};

TEST(SimCurrentDevice, AKernelForAnotherDeviceFailsUntilTheThreadMakesItCurrent) {
  BackToDeviceZero restore;
  SimStream one(1);
  EXPECT_EQ(current_sim_device(), 0);
  try {
    one.enqueue([] {});
    FAIL() << "a kernel for sim:1 from a thread on sim:0 was queued";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stream of sim:1 from a thread whose current device is sim:0"),
              std::string::npos)
        << e.what();
  }
  make_device_current(Device::sim(1));
  bool ran = false;
  one.enqueue([&] { ran = true; });
  one.synchronize();
  EXPECT_TRUE(ran);
  // Per thread, and a fresh thread's current device is 0, as CUDA's.
  std::thread other([&] {
    EXPECT_EQ(current_sim_device(), 0);
    EXPECT_THROW(one.enqueue([] {}), Error);
  });
  other.join();
  EXPECT_EQ(current_sim_device(), 1);
}

TEST(SimCurrentDevice, CopiesGoToAStreamOfAnyDevice) {
  SimStream one(1);
  ASSERT_EQ(current_sim_device(), 0);
  void* d = sim_memory().allocate(sizeof(float));
  const float in = 3.5f;
  float out = 0;
  copy_host_to_device_async(one, d, &in, sizeof in);
  copy_device_to_host_async(one, &out, d, sizeof out);
  one.synchronize();
  EXPECT_EQ(out, in);
  sim_memory().free(d);
}

}  // namespace
}  // namespace kiln::sim
