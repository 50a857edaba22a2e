#pragma once
// Captured work, launched again with one call (CUDA graphs): the server captures a model's
// forward pass per batch-size bucket, so a request costs one launch instead of one per kernel.
// On CUDA a cudaGraphExec; on sim the recorded tasks, queued again (a synchronize or an allocation
// during capture throws there, as CUDA forbids both, so code that is not capturable fails in CI).
// The CPU has no graphs: work runs when it is queued.
#include <memory>

#include "core/stream.h"

namespace kiln {

class DeviceGraph {
 public:
  DeviceGraph();  // empty: launch() fails until a capture is moved in
  ~DeviceGraph();
  DeviceGraph(DeviceGraph&&) noexcept;
  DeviceGraph& operator=(DeviceGraph&&) noexcept;

  // True where graphs exist (sim and CUDA streams).
  static bool supported(const Stream& s) { return !s.device().is_cpu(); }
  // Work queued on `s` from now on is recorded instead of run, until end_capture(s).
  static void begin_capture(const Stream& s);
  // The recorded work. Its memory, pointers and arguments are fixed: what it reads must be
  // rewritten in place before each launch.
  static DeviceGraph end_capture(const Stream& s);
  // Queues the captured work on `s` (a stream of the same device).
  void launch(const Stream& s) const;

 private:
  struct Impl;
  explicit DeviceGraph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
