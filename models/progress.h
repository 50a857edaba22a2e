#pragma once
// Training progress: a one-line bar redrawn in place when stderr is a terminal, plain log lines
// otherwise (CI logs, files, pipes). The Trainer decides how often to update.
#include <chrono>
#include <cstdint>
#include <string>

namespace kiln::models {

class Progress {
 public:
  explicit Progress(int64_t total_steps);
  void resume_at(int64_t step) { first_step_ = step; }
  void update(int64_t step, int64_t epoch, double loss, double lr, double examples_per_sec);
  // A line that must not be overwritten (evaluation results, early stopping).
  void message(const std::string& line);
  void finish();

 private:
  int64_t total_, first_step_ = 0;
  bool tty_;
  bool bar_drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace kiln::models
