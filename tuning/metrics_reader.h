#pragma once
// Reads a trial's metrics file as it grows: JSON lines {"step": N, "<tag>": value, ...}. Only
// complete lines are parsed while the trial runs (a writer may be mid-line); after it ends a
// final unterminated line counts too. A line that is not a JSON object, a non-numeric value for
// the tag, or a step that is not an integer makes the trial fail, with the line number.
// Lines without the tag are skipped (a trial may report other metrics); a line without "step"
// takes the previous step + 1.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::tuning {

using MetricPoint = std::pair<int64_t, double>;  // (step, value)

class MetricsReader {
 public:
  MetricsReader(std::string path, std::string tag) : path_(std::move(path)), tag_(std::move(tag)) {}

  // The values reported since the last call. `final`: the trial has ended.
  std::vector<MetricPoint> poll(bool final = false);

  // Set once a line is malformed; nothing after it is read.
  const std::string& error() const { return error_; }
  // The last value reported for the tag.
  std::optional<double> last_value() const { return last_; }
  int64_t last_step() const { return step_; }

 private:
  void parse_line(const std::string& line);

  std::string path_, tag_;
  uint64_t offset_ = 0;
  int64_t line_number_ = 0;
  int64_t step_ = -1;
  std::string pending_;  // bytes after the last newline
  std::optional<double> last_;
  std::vector<MetricPoint> fresh_;
  std::string error_;
};

}  // namespace kiln::tuning
