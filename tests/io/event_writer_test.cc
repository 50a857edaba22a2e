#include "io/event_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/crc32c.h"
#include "proto/event.pb.h"
#include "tests/io/temp_dir.h"

namespace kiln::io {
namespace {

using testing::TempDir;

uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// A minimal TFRecord reader: checks framing and both CRCs, decodes each record as an Event.
std::vector<kiln::tb::Event> read_events(const std::string& path) {
  std::string bytes = read_file(path);
  std::vector<kiln::tb::Event> events;
  size_t pos = 0;
  while (pos < bytes.size()) {
    EXPECT_LE(pos + 12, bytes.size()) << "partial record header";
    if (pos + 12 > bytes.size()) break;
    const uint64_t length = get_u64(&bytes[pos]);
    EXPECT_EQ(get_u32(&bytes[pos + 8]), masked_crc32c(&bytes[pos], 8)) << "length crc at " << pos;
    pos += 12;
    EXPECT_LE(pos + length + 4, bytes.size()) << "partial record";
    if (pos + length + 4 > bytes.size()) break;
    EXPECT_EQ(get_u32(&bytes[pos + length]), masked_crc32c(&bytes[pos], length)) << "data crc at " << pos;
    kiln::tb::Event event;
    EXPECT_TRUE(event.ParseFromArray(&bytes[pos], static_cast<int>(length)));
    events.push_back(event);
    pos += length + 4;
  }
  return events;
}

TEST(EventWriter, WritesParseableRecords) {
  TempDir dir;
  const std::string logdir = dir.file("runs/a");  // parents are created
  std::string path;
  {
    EventWriter writer(logdir);
    path = writer.path();
    writer.add_scalar("train/loss", 2.5, 1);
    writer.add_scalar("train/accuracy", 0.125, 1);
    writer.add_scalar("train/loss", 1.25, 2);
    writer.flush();
    // After flush() the records are visible to another reader while the writer is open.
    EXPECT_EQ(read_events(path).size(), 4u);
    writer.add_scalar("eval/loss", -3.0, 1000000000000LL);
  }
  EXPECT_EQ(std::filesystem::path(path).parent_path(), std::filesystem::path(logdir));
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  const std::string name = std::filesystem::path(path).filename().string();
  // events.out.tfevents.<10-digit unix seconds>.<hostname>.kiln (no std::regex: GCC 12 warns
  // inside it at some optimization levels).
  const std::string prefix = "events.out.tfevents.";
  ASSERT_EQ(name.rfind(prefix, 0), 0u) << name;
  const std::string seconds = name.substr(prefix.size(), 10);
  EXPECT_EQ(seconds.find_first_not_of("0123456789"), std::string::npos) << name;
  EXPECT_EQ(name.substr(prefix.size() + 10), "." + std::string(host) + ".kiln");

  std::vector<kiln::tb::Event> events = read_events(path);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_GT(events[0].wall_time(), 1.6e9);
  struct Expected {
    const char* tag;
    float value;
    int64_t step;
  };
  const Expected expected[] = {{"train/loss", 2.5f, 1},
                               {"train/accuracy", 0.125f, 1},
                               {"train/loss", 1.25f, 2},
                               {"eval/loss", -3.0f, 1000000000000LL}};
  for (size_t i = 0; i < 4; ++i) {
    const kiln::tb::Event& e = events[i + 1];
    ASSERT_TRUE(e.has_summary()) << i;
    ASSERT_EQ(e.summary().value_size(), 1);
    EXPECT_EQ(e.summary().value(0).tag(), expected[i].tag);
    EXPECT_EQ(e.summary().value(0).simple_value(), expected[i].value);
    EXPECT_EQ(e.step(), expected[i].step);
    EXPECT_GE(e.wall_time(), events[0].wall_time());
  }
}

TEST(EventWriter, TwoWritersGetDistinctFiles) {
  TempDir dir;
  EventWriter a(dir.path());
  EventWriter b(dir.path());
  EXPECT_NE(a.path(), b.path());
  // TensorBoard reads a directory's files in name order: the later file sorts after the earlier
  // one even within one second (its SessionLog START must come after the events it purges).
  EXPECT_LT(a.path(), b.path());
  a.add_scalar("x", 1, 1);
  b.add_scalar("x", 2, 1);
  a.flush();
  b.flush();
  EXPECT_EQ(read_events(a.path()).size(), 2u);
  EXPECT_EQ(read_events(b.path()).size(), 2u);
}

TEST(EventWriter, SessionStartIsTensorFlowsSessionLogStart) {
  TempDir dir;
  std::string path;
  {
    EventWriter w(dir.path());
    path = w.path();
    w.add_session_start(11);
  }
  std::vector<kiln::tb::Event> events = read_events(path);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].step(), 11);
  ASSERT_TRUE(events[1].has_session_log());
  EXPECT_EQ(events[1].session_log().status(), kiln::tb::SessionLog::START);
  // TensorFlow's Event: field 7, message with status (field 1) = 1 (START).
  std::string bytes = events[1].SerializeAsString();
  EXPECT_NE(bytes.find(std::string("\x3a\x02\x08\x01", 4)), std::string::npos);
}

TEST(EventWriter, UncreatableLogdirIsAnError) {
  TempDir dir;
  write_file_atomic(dir.file("plain_file"), "x");
  EXPECT_THROW(EventWriter(dir.file("plain_file/sub")), Error);
}

}  // namespace
}  // namespace kiln::io
