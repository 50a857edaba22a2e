#include "io/example_shard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "tests/io/temp_dir.h"

namespace kiln::io {
namespace {

ExampleShardSchema schema() {
  ExampleShardSchema s;
  s.dense_width = 3;
  s.ids_features = {"city", "tags"};
  s.label_dtype = DType::i32;
  s.state_fingerprint = "00000000deadbeef";
  return s;
}

// rows examples; example r has r % 3 tags, and values that encode (first, r).
ExampleBlock block(int64_t rows, int first) {
  ExampleBlock b;
  b.rows = rows;
  b.dense = Tensor::empty(Shape{rows, 3}, DType::f32);
  for (int64_t i = 0; i < rows * 3; ++i) b.dense.data<float>()[i] = static_cast<float>(first * 1000 + i) + 0.5f;
  Tensor city_ids = Tensor::empty(Shape{rows}, DType::i64), city_off = Tensor::empty(Shape{rows + 1}, DType::i64);
  for (int64_t r = 0; r <= rows; ++r) city_off.data<int64_t>()[r] = r;
  for (int64_t r = 0; r < rows; ++r) city_ids.data<int64_t>()[r] = first + r;
  std::vector<int64_t> tags, off = {0};
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < r % 3; ++k) tags.push_back(int64_t{1} << 40 | (first + r * 7 + k));
    off.push_back(static_cast<int64_t>(tags.size()));
  }
  Tensor tag_ids = Tensor::empty(Shape{std::max<int64_t>(static_cast<int64_t>(tags.size()), 1)}, DType::i64);
  std::copy(tags.begin(), tags.end(), tag_ids.data<int64_t>());
  Tensor tag_off = Tensor::empty(Shape{rows + 1}, DType::i64);
  std::copy(off.begin(), off.end(), tag_off.data<int64_t>());
  b.ids = {city_ids, tag_ids};
  b.offsets = {city_off, tag_off};
  b.label = Tensor::empty(Shape{rows}, DType::i32);
  for (int64_t r = 0; r < rows; ++r) b.label.data<int32_t>()[r] = static_cast<int32_t>(first + r) % 5;
  return b;
}

template <typename T>
std::vector<T> values(const Tensor& t, int64_t n) {
  return std::vector<T>(t.data<T>(), t.data<T>() + n);
}

void expect_equal(const ExampleBlock& want, const ExampleBlock& got) {
  ASSERT_EQ(want.rows, got.rows);
  EXPECT_EQ(values<float>(want.dense, want.rows * 3), values<float>(got.dense, got.rows * 3));
  for (size_t f = 0; f < want.ids.size(); ++f) {
    const int64_t nnz = want.offsets[f].data<int64_t>()[want.rows];
    EXPECT_EQ(values<int64_t>(want.offsets[f], want.rows + 1), values<int64_t>(got.offsets[f], got.rows + 1));
    EXPECT_EQ(values<int64_t>(want.ids[f], nnz), values<int64_t>(got.ids[f], nnz));
  }
  EXPECT_EQ(values<int32_t>(want.label, want.rows), values<int32_t>(got.label, got.rows));
}

TEST(ExampleShard, BlocksReadBackAsWritten) {
  testing::TempDir dir;
  const std::string path = dir.file("a.kex");
  ExampleShardWriter w(path, schema());
  w.append(block(5, 0));
  w.append(block(0, 9));  // empty blocks are skipped
  w.append(block(17, 100));
  EXPECT_FALSE(std::filesystem::exists(path));  // only a hidden temporary file until commit
  w.commit();
  ExampleShardReader r(path);
  EXPECT_EQ(r.schema(), schema());
  EXPECT_EQ(r.rows(), 22);
  ASSERT_EQ(r.blocks(), 2);
  expect_equal(block(5, 0), r.read_block(0));
  expect_equal(block(17, 100), r.read_block(1));
}

TEST(ExampleShard, AnUncommittedWriterLeavesNothing) {
  testing::TempDir dir;
  {
    ExampleShardWriter w(dir.file("a.kex"), schema());
    w.append(block(5, 0));
  }
  EXPECT_TRUE(dir.entries().empty());
}

std::string written_shard(const testing::TempDir& dir) {
  ExampleShardWriter w(dir.file("a.kex"), schema());
  w.append(block(5, 0));
  w.append(block(6, 1));
  w.commit();
  return dir.file("a.kex");
}

TEST(ExampleShard, ACorruptBlockIsNamedWithItsFile) {
  testing::TempDir dir;
  const std::string path = written_shard(dir);
  const uint64_t offset = ExampleShardReader(path).block_info(1).offset;
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset + 3));
  f.put('\x7f');
  f.close();
  ExampleShardReader r(path);
  expect_equal(block(5, 0), r.read_block(0));  // the other block is intact
  try {
    r.read_block(1);
    FAIL() << "a flipped byte was not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": block 1 (bytes " + std::to_string(offset)), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
}

TEST(ExampleShard, ATruncatedShardIsRefusedWhole) {
  testing::TempDir dir;
  const std::string path = written_shard(dir);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 1);
  try {
    ExampleShardReader r(path);
    FAIL() << "a truncated shard was opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": not a complete Kiln example shard"), std::string::npos) << e.what();
  }
  write_file_atomic(dir.file("b.kex"), "not a shard at all");
  EXPECT_THROW(ExampleShardReader(dir.file("b.kex")), Error);
}

}  // namespace
}  // namespace kiln::io
