#pragma once
// When the Trainer writes a checkpoint (CheckpointConfig in proto/train_config.proto): at the
// end, at the step and epoch cadence the config asks for, and by time. The cadence is a
// property of the steps, the same on every rank of a data-parallel run; the time is rank 0's
// own clock.
#include <chrono>
#include <cstdint>

#include "proto/train_config.pb.h"

namespace kiln::models {

class CheckpointSchedule {
 public:
  // Fails naming the field when a setting is out of range.
  explicit CheckpointSchedule(const CheckpointConfig& config);
  // every_seconds with its default applied (0 = not by time).
  double every_seconds() const { return every_seconds_; }
  // Whether `step` (1-based: the count of steps done) is on the step or epoch cadence;
  // `epoch_ended` says the step finished an epoch, `epochs_done` counts the finished epochs.
  bool on_cadence(int64_t step, bool epoch_ended, int64_t epochs_done) const;
  // Whether every_seconds have passed since the last restart_timer().
  bool time_due() const;
  // At the start of a run and after each checkpoint written.
  void restart_timer() { last_ = std::chrono::steady_clock::now(); }

 private:
  int64_t every_steps_ = 0, every_epochs_ = 0;
  double every_seconds_ = 0;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace kiln::models
