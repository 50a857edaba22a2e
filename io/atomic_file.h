#pragma once
// Crash-safe file replacement: readers of `path` see either the old contents or the new ones,
// never a prefix. Data goes to a temporary file in the same directory (rename is only atomic
// within one file system), which is fsynced, renamed over `path`, and the directory is fsynced
// so the rename itself survives a power loss.
#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::io {

void write_file_atomic(const std::string& path, std::string_view data);

// The whole file; kiln::Error naming the path if it cannot be read.
std::string read_file(const std::string& path);

// fsync on a directory, making entries created or renamed in it durable.
void fsync_directory(const std::string& dir);

// fsync on a file written by someone else (SQLite, a finished writer).
void fsync_file(const std::string& path);

// Renames `from` (a file or a directory) to `to` unless `to` exists: returns false then, and
// nothing changed. Other failures are kiln::Error naming both paths.
bool rename_no_replace(const std::string& from, const std::string& to);

// True while process `pid` exists on this host. Temporary files and directories carry their
// writer's pid in their names; once it is gone they are stale (a kill -9 or a full disk).
bool process_exists(long pid);

// Streaming form of write_file_atomic for data too large to assemble in memory:
//   AtomicFileWriter w(path); w.write(...); ...; w.commit();
// Until commit() returns, `path` is untouched; destroying an uncommitted writer (or a failure
// in commit) removes the temporary file.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view data) { write(data.data(), data.size()); }
  // Writes `count` zero bytes (alignment padding).
  void write_zeros(size_t count);
  size_t bytes_written() const { return written_; }
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void abandon() noexcept;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  size_t written_ = 0;
  bool committed_ = false;
};

}  // namespace kiln::io
