#pragma once
// The calling thread's current device, as CUDA has one per host thread (cudaSetDevice): a kernel
// launched to a stream of another device fails, and scratch allocated without a device goes to
// the current one. Each thread that issues work to a device makes that device current once
// (the trainer, each serving ModelRunner; the gradient sync's communication thread, which today
// reduces host buckets only); a fresh
// thread's current device is 0. The sim keeps its own per-thread current device and refuses a
// kernel queued to another sim device's stream, so a missing call fails in CI (sim:1 and up).
#include "core/device.h"

namespace kiln {

// Makes `device` current on the calling thread (nothing for the CPU). Not a scope: it stays.
void make_device_current(const Device& device);

// The calling thread's current sim device index (0 until make_device_current(Device::sim(i))).
int current_sim_device();

}  // namespace kiln
