#pragma once
// Training losses stay on the device between log intervals: each step's per-example losses are
// copied, in stream order and without waiting, into a host ring; take() waits once and sums them
// on the host (in double, in example order: the CPU run prints exactly what it always printed).
// A ring that would overflow before the interval ends is drained early (one wait), so memory is
// bounded whatever log_every_steps is.
#include <cstdint>
#include <vector>

#include "core/device_memory.h"
#include "core/tensor.h"

namespace kiln::models {

class LossReadback {
 public:
  // `capacity` examples of host ring for the stream's device.
  LossReadback(const Stream& s, int64_t capacity);

  // Queues the copy of one step's per-example losses (f32 [batch], on the stream's device); the
  // step's loss counts with weight `share` (a data-parallel rank's part of the global batch).
  void add(const Tensor& losses, int64_t step, double share);

  struct Taken {
    // The first step whose mean loss is not finite, and that loss; -1 when all were finite.
    int64_t bad_step = -1;
    double bad_loss = 0;
  };
  // Waits for the queued copies and adds share * mean(losses) of each step since the last take()
  // to `sum`, one step after the other.
  Taken take(double& sum);

 private:
  void drain();
  struct Entry {
    int64_t offset, count, step;
    double share;
  };
  Stream stream_;
  Tensor ring_;
  int64_t used_ = 0;
  std::vector<Entry> entries_;
  std::vector<double> weighted_;  // share * mean loss of each drained step not yet taken
  Taken pending_;
};

}  // namespace kiln::models
