#include "io/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "tests/io/temp_dir.h"

namespace kiln::io {
namespace {

using testing::TempDir;

TEST(AtomicFile, WriteAndRead) {
  TempDir dir;
  const std::string path = dir.file("a.bin");
  std::string data("hello\0world", 11);
  write_file_atomic(path, data);
  EXPECT_EQ(read_file(path), data);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"a.bin"});
}

TEST(AtomicFile, ReplacesExistingFileWhole) {
  TempDir dir;
  const std::string path = dir.file("a.txt");
  write_file_atomic(path, std::string(10000, 'x'));
  write_file_atomic(path, "short");
  EXPECT_EQ(read_file(path), "short");
  write_file_atomic(path, "");
  EXPECT_EQ(read_file(path), "");
  EXPECT_EQ(dir.entries().size(), 1u);
}

TEST(AtomicFile, BareFileNameUsesCurrentDirectory) {
  TempDir dir;
  auto old = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  write_file_atomic("bare.txt", "x");
  std::filesystem::current_path(old);
  EXPECT_EQ(read_file(dir.file("bare.txt")), "x");
}

TEST(AtomicFile, UncommittedWriterLeavesNothing) {
  TempDir dir;
  const std::string path = dir.file("b.txt");
  write_file_atomic(path, "old");
  {
    AtomicFileWriter w(path);
    w.write("new contents");
    EXPECT_TRUE(std::filesystem::exists(w.temp_path()));
    EXPECT_EQ(std::filesystem::path(w.temp_path()).parent_path(), std::filesystem::path(dir.path()));
  }
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"b.txt"});
}

TEST(AtomicFile, StreamingWriter) {
  TempDir dir;
  const std::string path = dir.file("c.bin");
  AtomicFileWriter w(path);
  w.write("ab");
  w.write_zeros(5000);
  w.write("c");
  EXPECT_EQ(w.bytes_written(), 5003u);
  EXPECT_FALSE(std::filesystem::exists(path));
  w.commit();
  std::string got = read_file(path);
  ASSERT_EQ(got.size(), 5003u);
  EXPECT_EQ(got.substr(0, 2), "ab");
  EXPECT_EQ(got.back(), 'c');
  EXPECT_EQ(got.find_first_not_of('\0', 2), 5002u);
}

TEST(AtomicFile, ErrorsNameThePath) {
  TempDir dir;
  const std::string missing = dir.file("nope.txt");
  try {
    read_file(missing);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  const std::string bad_dir = dir.file("no/such/dir/f.txt");
  try {
    write_file_atomic(bad_dir, "x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad_dir), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_file(dir.path()), Error);  // a directory is not readable as a file
}

TEST(AtomicFile, FsyncDirectory) {
  TempDir dir;
  EXPECT_NO_THROW(fsync_directory(dir.path()));
  EXPECT_THROW(fsync_directory(dir.file("missing")), Error);
}

}  // namespace
}  // namespace kiln::io
