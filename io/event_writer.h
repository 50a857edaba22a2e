#pragma once
// TensorBoard event files with scalar summaries. Each record is TFRecord-framed:
//   uint64 length (LE) | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)
// and holds one serialized kiln.tb.Event (wire-compatible with TensorFlow's Event).
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

namespace kiln::io {

class EventWriter {
 public:
  // Creates `logdir` (and parents) and a new file
  // events.out.tfevents.<unix seconds>.<hostname>.kiln in it (.kiln.001, .002, ... when taken,
  // so a later file always sorts after an earlier one, as TensorBoard reads them), starting with
  // the file_version record TensorBoard expects.
  explicit EventWriter(const std::string& logdir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Thread-safe. The value is stored as a float (TensorBoard's simple_value).
  void add_scalar(const std::string& tag, double value, int64_t step);
  // A SessionLog START at `step`, the first step this run writes: TensorBoard then purges the
  // events at steps >= `step` from files it read before (a run killed past its last checkpoint),
  // so a resumed run's steps are not shown twice.
  void add_session_start(int64_t step);
  // Hands buffered records to the OS so a running TensorBoard sees them.
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(std::string_view data);

  std::string path_;
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

}  // namespace kiln::io
