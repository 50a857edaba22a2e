#include "models/checkpoint_schedule.h"

#include <cmath>

#include "core/error.h"

namespace kiln::models {

namespace {

// Like tf.estimator's save_checkpoints_secs: bounds the work a crash loses on a long run.
constexpr double kDefaultEverySeconds = 600;

}  // namespace

CheckpointSchedule::CheckpointSchedule(const CheckpointConfig& config)
    : every_steps_(config.every_steps()), every_epochs_(config.every_epochs()) {
  if (every_steps_ < 0) fail("checkpoint.every_steps must be >= 0 (0 = not by steps), got ", every_steps_);
  if (every_epochs_ < 0) fail("checkpoint.every_epochs must be >= 0 (0 = not by epochs), got ", every_epochs_);
  if (config.has_every_seconds()) {
    every_seconds_ = config.every_seconds();
    if (!std::isfinite(every_seconds_) || every_seconds_ < 0)
      fail("checkpoint.every_seconds must be >= 0 (0 = not by time), got ", every_seconds_);
  } else {
    // An explicit step or epoch cadence is what the user wants, exactly; no timer on top.
    every_seconds_ = every_steps_ > 0 || every_epochs_ > 0 ? 0 : kDefaultEverySeconds;
  }
}

bool CheckpointSchedule::on_cadence(int64_t step, bool epoch_ended, int64_t epochs_done) const {
  if (every_steps_ > 0 && step % every_steps_ == 0) return true;
  return every_epochs_ > 0 && epoch_ended && epochs_done % every_epochs_ == 0;
}

bool CheckpointSchedule::time_due() const {
  return every_seconds_ > 0 &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count() >= every_seconds_;
}

}  // namespace kiln::models
