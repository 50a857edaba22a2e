#pragma once
// Training progress: a one-line bar redrawn in place when stderr is a terminal, plain log lines
// otherwise (CI logs, files, pipes), or handed to a listener (the Python package draws its own
// bar in a notebook, where the process's stderr is not shown). The Trainer decides how often to
// update.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace kiln::models {

// One update (message empty) or one line that must not be overwritten (message set).
struct ProgressEvent {
  int64_t step = 0, total = 0, epoch = 0;
  double loss = 0, learning_rate = 0, examples_per_second = 0, eta_seconds = 0;
  std::string message;
};
using ProgressListener = std::function<void(const ProgressEvent&)>;

class Progress {
 public:
  // With a listener nothing is written to stderr; what the listener throws leaves the Trainer.
  explicit Progress(int64_t total_steps, ProgressListener listener = {});
  void resume_at(int64_t step) { first_step_ = step; }
  void update(int64_t step, int64_t epoch, double loss, double lr, double examples_per_sec);
  // A line that must not be overwritten (evaluation results, early stopping).
  void message(const std::string& line);
  void finish();

 private:
  ProgressListener listener_;
  int64_t total_, first_step_ = 0;
  bool tty_;
  bool bar_drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace kiln::models
