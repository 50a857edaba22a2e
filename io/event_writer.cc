#include "io/event_writer.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "io/crc32c.h"
#include "proto/event.pb.h"

namespace kiln::io {
namespace {

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

void put_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

void put_u64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

}  // namespace

EventWriter::EventWriter(const std::string& logdir) {
  std::error_code ec;
  std::filesystem::create_directories(logdir, ec);
  if (ec) fail("cannot create log directory ", logdir, ": ", ec.message());

  const auto seconds = static_cast<long long>(now_seconds());
  const std::string base = (std::filesystem::path(logdir) / ("events.out.tfevents." + std::to_string(seconds) +
                                                              "." + hostname()))
                               .string();
  // "x": never truncate another writer's file created in the same second; take the next name.
  for (int attempt = 0; attempt < 1000 && !file_; ++attempt) {
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, ".%03d", attempt);
    path_ = attempt == 0 ? base + ".kiln" : base + ".kiln" + suffix;
    file_ = std::fopen(path_.c_str(), "wbx");
    if (!file_ && errno != EEXIST) fail("cannot create event file ", path_, ": ", std::strerror(errno));
  }
  if (!file_) fail("cannot create an event file in ", logdir, ": too many files with the same name");

  kiln::tb::Event event;
  event.set_wall_time(now_seconds());
  event.set_step(0);
  event.set_file_version("brain.Event:2");
  try {
    write_record(event.SerializeAsString());
    flush();
  } catch (...) {
    std::fclose(file_);  // the destructor does not run for a throwing constructor
    throw;
  }
}

EventWriter::~EventWriter() {
  // Errors here cannot be thrown; callers who care call flush() first.
  if (file_) std::fclose(file_);
}

void EventWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  kiln::tb::Event event;
  event.set_wall_time(now_seconds());
  event.set_step(step);
  kiln::tb::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  std::string data = event.SerializeAsString();
  std::lock_guard<std::mutex> lock(mutex_);
  write_record(data);
}

void EventWriter::add_session_start(int64_t step) {
  kiln::tb::Event event;
  event.set_wall_time(now_seconds());
  event.set_step(step);
  event.mutable_session_log()->set_status(kiln::tb::SessionLog::START);
  std::string data = event.SerializeAsString();
  std::lock_guard<std::mutex> lock(mutex_);
  write_record(data);
}

void EventWriter::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::fflush(file_) != 0) fail("cannot write event file ", path_, ": ", std::strerror(errno));
}

void EventWriter::write_record(std::string_view data) {
  char header[12];
  put_u64(header, data.size());
  put_u32(header + 8, masked_crc32c(header, 8));
  char footer[4];
  put_u32(footer, masked_crc32c(data.data(), data.size()));
  if (std::fwrite(header, 1, sizeof(header), file_) != sizeof(header) ||
      std::fwrite(data.data(), 1, data.size(), file_) != data.size() ||
      std::fwrite(footer, 1, sizeof(footer), file_) != sizeof(footer))
    fail("cannot write event file ", path_, ": ", std::strerror(errno));
}

}  // namespace kiln::io
