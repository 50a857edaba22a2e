#include "models/progress.h"

#include <unistd.h>

#include <cstdio>

namespace kiln::models {

Progress::Progress(int64_t total_steps, ProgressListener listener)
    : listener_(std::move(listener)),
      total_(total_steps),
      tty_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(int64_t step, int64_t epoch, double loss, double lr, double eps) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double done = static_cast<double>(step - first_step_);
  double eta = done > 0 ? secs / done * static_cast<double>(total_ - step) : 0;
  if (listener_) {
    listener_(ProgressEvent{step, total_, epoch, loss, lr, eps, eta, {}});
    return;
  }
  if (tty_) {
    constexpr int kWidth = 30;
    int filled = total_ > 0 ? static_cast<int>(kWidth * step / total_) : kWidth;
    char bar[kWidth + 1];
    for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
    bar[kWidth] = 0;
    std::fprintf(stderr, "\r[%s] %lld/%lld epoch %lld loss %.4f lr %.2e %.0f ex/s eta %.0fs   ", bar,
                 static_cast<long long>(step), static_cast<long long>(total_), static_cast<long long>(epoch), loss, lr,
                 eps, eta);
    bar_drawn_ = true;
  } else {
    std::fprintf(stderr, "step %lld/%lld epoch %lld loss %.4f lr %.3e examples/s %.0f eta %.0fs\n",
                 static_cast<long long>(step), static_cast<long long>(total_), static_cast<long long>(epoch), loss, lr,
                 eps, eta);
  }
  std::fflush(stderr);
}

void Progress::message(const std::string& line) {
  if (listener_) {
    ProgressEvent e;
    e.total = total_;
    e.message = line;
    listener_(e);
    return;
  }
  if (bar_drawn_) std::fputc('\n', stderr);
  bar_drawn_ = false;
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (bar_drawn_) std::fputc('\n', stderr);
  bar_drawn_ = false;
}

}  // namespace kiln::models
