#include "io/example_shard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/error_budget.h"
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

// Flips a byte inside block `b` of the shard at `path`; returns the block's offset.
uint64_t corrupt_block(const std::string& path, int64_t b) {
  const uint64_t offset = ExampleShardReader(path).block_info(b).offset;
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset + 3));
  f.put('\x7f');
  return offset;
}

TEST(ExampleShard, ACorruptBlockIsNamedWithItsFile) {
  testing::TempDir dir;
  const std::string path = written_shard(dir);
  const uint64_t offset = corrupt_block(path, 1);
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

// The message of the kiln::Error `f` throws ("" when it throws none).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Within csv.max_bad_rows a corrupt block is skipped whole and its rows counted; a budget that
// cannot take all its rows (0 by default) is an error naming the file, the block and the setting.
TEST(ExampleShard, ACorruptBlockIsSkippedWithinTheErrorBudget) {
  testing::TempDir dir;
  const std::string path = written_shard(dir);
  const uint64_t offset = corrupt_block(path, 1);
  ExampleShardReader r(path);
  const std::string block1 = path + ": block 1 (bytes " + std::to_string(offset) + ".." +
                             std::to_string(offset + r.block_info(1).bytes) + ", 6 rows): checksum mismatch";

  ErrorBudget none(0);
  ASSERT_TRUE(r.read_block_or_skip(0, none).has_value());  // an intact block costs nothing
  EXPECT_EQ(none.count(), 0);
  std::string e = error_of([&] { r.read_block_or_skip(1, none); });
  EXPECT_NE(e.find(block1), std::string::npos) << e;
  EXPECT_NE(e.find("csv.max_bad_rows is 0"), std::string::npos) << e;

  ErrorBudget small(5);  // fewer than the block's 6 rows: the block is not half skipped
  e = error_of([&] { r.read_block_or_skip(1, small); });
  EXPECT_NE(e.find(block1), std::string::npos) << e;
  EXPECT_NE(e.find("more than 5 malformed rows; raise csv.max_bad_rows"), std::string::npos) << e;

  for (int64_t max : {6, -1}) {
    ErrorBudget budget(max);
    std::optional<ExampleBlock> b0 = r.read_block_or_skip(0, budget);
    ASSERT_TRUE(b0.has_value());
    expect_equal(block(5, 0), *b0);
    EXPECT_FALSE(r.read_block_or_skip(1, budget).has_value()) << max;
    EXPECT_EQ(budget.count(), 6) << max;
    EXPECT_EQ(budget.left_out(), (std::map<std::string, int64_t>{{kCorruptBlockRows, 6}})) << max;
    ASSERT_EQ(budget.first().size(), 1u);
    EXPECT_EQ(format_bad_row(budget.first()[0]).find(block1), 0u) << format_bad_row(budget.first()[0]);
  }
}

// A truncated shard has lost its footer, the index of its blocks: it is an error whatever the
// budget (training never opens it with one).
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
