#include "io/checkpoint_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "tests/io/temp_dir.h"

namespace kiln::io {
namespace {

using testing::TempDir;

Tensor patterned(const Shape& shape, DType dtype, int salt) {
  Tensor t = Tensor::empty(shape, dtype);
  auto* p = static_cast<unsigned char*>(t.raw());
  for (size_t i = 0; i < t.bytes(); ++i) p[i] = static_cast<unsigned char>(i * 31 + salt);
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a kiln::Error";
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<NamedTensor> sample_tensors() {
  return {{"conv1/weight", patterned({3, 3, 1, 8}, DType::f32, 1)},
          {"bf16", patterned({5}, DType::bf16, 2)},
          {"f16", patterned({2, 3}, DType::f16, 3)},
          {"i32", patterned({7}, DType::i32, 4)},
          {"i64", patterned({1, 1, 1}, DType::i64, 5)},
          {"u8", patterned({13}, DType::u8, 6)},
          {"f64", patterned({4, 2}, DType::f64, 7)},
          {"scalar", patterned({}, DType::f32, 8)},
          {"empty", Tensor::empty({0, 4}, DType::f32)}};
}

TEST(CheckpointFile, RoundTripAllDtypes) {
  TempDir dir;
  const std::string path = dir.file("ckpt");
  const std::string metadata("step: 42\n\0binary\xff", 17);
  std::vector<NamedTensor> tensors = sample_tensors();
  write_checkpoint_file(path, metadata, tensors);
  CheckpointFile f = read_checkpoint_file(path);
  EXPECT_EQ(f.metadata, metadata);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(f.tensors[i].name, tensors[i].name);
    EXPECT_EQ(f.tensors[i].tensor.dtype(), tensors[i].tensor.dtype()) << tensors[i].name;
    EXPECT_EQ(f.tensors[i].tensor.shape(), tensors[i].tensor.shape()) << tensors[i].name;
    EXPECT_TRUE(same_bytes(f.tensors[i].tensor, tensors[i].tensor)) << tensors[i].name;
  }
  ASSERT_NE(f.find("i64"), nullptr);
  EXPECT_EQ(f.find("i64")->dtype(), DType::i64);
  EXPECT_EQ(f.find("nope"), nullptr);
}

TEST(CheckpointFile, DataIsRawAnd64ByteAligned) {
  TempDir dir;
  const std::string path = dir.file("ckpt");
  Tensor t = Tensor::empty({16}, DType::i32);
  for (int i = 0; i < 16; ++i) t.data<int32_t>()[i] = 0x51ED0000 + i;
  write_checkpoint_file(path, "m", {{"a", patterned({3}, DType::u8, 0)}, {"b", t}});
  std::string bytes = read_file(path);
  EXPECT_EQ(bytes.substr(0, 8), "KILNCKPT");
  size_t at = bytes.find(std::string(static_cast<const char*>(t.raw()), t.bytes()));
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(at % 64, 0u);
  EXPECT_EQ(at + t.bytes(), bytes.size());  // last tensor ends the file
}

TEST(CheckpointFile, EmptyCheckpointAndViews) {
  TempDir dir;
  const std::string path = dir.file("ckpt");
  write_checkpoint_file(path, "", {});
  CheckpointFile f = read_checkpoint_file(path);
  EXPECT_EQ(f.metadata, "");
  EXPECT_TRUE(f.tensors.empty());
  // A view into a larger buffer stores only the view.
  Tensor big = patterned({10, 4}, DType::f32, 9);
  write_checkpoint_file(path, "", {{"rows", big.slice_rows(3, 5)}});
  f = read_checkpoint_file(path);
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(f.tensors[0].tensor.shape(), Shape({2, 4}));
  EXPECT_TRUE(same_bytes(f.tensors[0].tensor, big.slice_rows(3, 5)));
}

TEST(CheckpointFile, TruncationIsReported) {
  TempDir dir;
  const std::string good = dir.file("good"), cut = dir.file("cut");
  write_checkpoint_file(good, "meta", sample_tensors());
  const std::string bytes = read_file(good);
  for (size_t len : {size_t{3}, size_t{20}, size_t{60}, bytes.size() / 2, bytes.size() - 1}) {
    write_file_atomic(cut, bytes.substr(0, len));
    std::string msg = error_of([&] { read_checkpoint_file(cut); });
    EXPECT_TRUE(contains(msg, "checkpoint " + cut + " is truncated")) << len << ": " << msg;
  }
  write_file_atomic(cut, bytes + "extra");
  std::string msg = error_of([&] { read_checkpoint_file(cut); });
  EXPECT_TRUE(contains(msg, cut)) << msg;
}

TEST(CheckpointFile, ChecksumMismatchInTensor) {
  TempDir dir;
  const std::string path = dir.file("ckpt");
  Tensor w = patterned({100}, DType::f32, 3);
  write_checkpoint_file(path, "meta", {{"bias", patterned({4}, DType::f32, 1)}, {"weight", w}});
  std::string bytes = read_file(path);
  size_t at = bytes.find(std::string(static_cast<const char*>(w.raw()), w.bytes()));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 123] ^= 0x10;
  write_file_atomic(path, bytes);
  std::string msg = error_of([&] { read_checkpoint_file(path); });
  EXPECT_TRUE(contains(msg, "checksum mismatch in tensor weight of " + path)) << msg;
}

TEST(CheckpointFile, ChecksumMismatchInHeader) {
  TempDir dir;
  const std::string path = dir.file("ckpt");
  write_checkpoint_file(path, "metadata-text", {{"t", patterned({4}, DType::f32, 1)}});
  std::string bytes = read_file(path);
  size_t at = bytes.find("metadata-text");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'M';
  write_file_atomic(path, bytes);
  std::string msg = error_of([&] { read_checkpoint_file(path); });
  EXPECT_TRUE(contains(msg, "checksum mismatch in the header of " + path)) << msg;
}

TEST(CheckpointFile, BadMagicAndMissingFile) {
  TempDir dir;
  const std::string path = dir.file("notckpt");
  write_file_atomic(path, std::string(200, 'z'));
  std::string msg = error_of([&] { read_checkpoint_file(path); });
  EXPECT_TRUE(contains(msg, path) && contains(msg, "magic")) << msg;
  msg = error_of([&] { read_checkpoint_file(dir.file("missing")); });
  EXPECT_TRUE(contains(msg, dir.file("missing"))) << msg;
}

TEST(CheckpointFile, ReplacesExistingFileAtomically) {
  TempDir dir;
  const std::string path = dir.file("model.ckpt");
  write_checkpoint_file(path, "first", sample_tensors());
  write_checkpoint_file(path, "second", {{"only", patterned({2}, DType::u8, 0)}});
  CheckpointFile f = read_checkpoint_file(path);
  EXPECT_EQ(f.metadata, "second");
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(f.tensors[0].name, "only");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.ckpt"});  // no temporary files left
}

TEST(CheckpointFile, RejectedWriteLeavesOldFileAndNoTemp) {
  TempDir dir;
  const std::string path = dir.file("model.ckpt");
  write_checkpoint_file(path, "keep", {});
  EXPECT_THROW(write_checkpoint_file(path, "x", {{"a", patterned({1}, DType::u8, 0)}, {"a", patterned({1}, DType::u8, 0)}}),
               Error);
  EXPECT_THROW(write_checkpoint_file(path, "x", {{"", patterned({1}, DType::u8, 0)}}), Error);
  EXPECT_THROW(write_checkpoint_file(path, "x", {{"u", Tensor()}}), Error);
  EXPECT_THROW(write_checkpoint_file(dir.file("no/dir/ckpt"), "x", {}), Error);
  EXPECT_EQ(read_checkpoint_file(path).metadata, "keep");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.ckpt"});
}

}  // namespace
}  // namespace kiln::io
