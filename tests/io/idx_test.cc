#include "io/idx.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/io/temp_dir.h"

namespace kiln::io {
namespace {

using testing::TempDir;

std::string idx_bytes(const std::vector<uint32_t>& dims, const std::string& data, uint8_t type = 0x08) {
  std::string out = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(d >> shift));
  return out + data;
}

void write_plain(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

std::string counting_data(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + 3);
  return s;
}

// The message of the kiln::Error `fn` throws ("" and a test failure if none).
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

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class IdxRoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(IdxRoundTrip, ReadsDimsAndData) {
  TempDir dir;
  const bool gz = GetParam();
  const std::string path = dir.file(gz ? "x.idx.gz" : "x.idx");
  const std::string data = counting_data(3 * 4 * 5);
  if (gz) {
    write_gz(path, idx_bytes({3, 4, 5}, data));
  } else {
    write_plain(path, idx_bytes({3, 4, 5}, data));
  }
  Tensor t = read_idx(path);
  EXPECT_EQ(t.shape(), Shape({3, 4, 5}));
  EXPECT_EQ(t.dtype(), DType::u8);
  EXPECT_EQ(std::string(static_cast<const char*>(t.raw()), t.bytes()), data);
}

TEST_P(IdxRoundTrip, Dataset) {
  TempDir dir;
  const bool gz = GetParam();
  auto write = gz ? write_gz : write_plain;
  const std::string images = dir.file("img"), labels = dir.file("lab");
  write(images, idx_bytes({4, 2, 3}, counting_data(24)));
  write(labels, idx_bytes({4}, std::string{1, 9, 0, 5}));
  ImageDataset ds = read_idx_dataset(images, labels);
  EXPECT_EQ(ds.images.shape(), Shape({4, 2, 3, 1}));
  EXPECT_EQ(ds.images.dtype(), DType::u8);
  ASSERT_EQ(ds.labels.shape(), Shape({4}));
  ASSERT_EQ(ds.labels.dtype(), DType::i32);
  EXPECT_EQ(ds.labels.data<int32_t>()[0], 1);
  EXPECT_EQ(ds.labels.data<int32_t>()[1], 9);
  EXPECT_EQ(ds.labels.data<int32_t>()[3], 5);
  EXPECT_EQ(ds.images.data<uint8_t>()[23], static_cast<uint8_t>(23 * 7 + 3));
}

TEST_P(IdxRoundTrip, TruncatedData) {
  TempDir dir;
  const std::string path = dir.file("t.idx");
  (GetParam() ? write_gz : write_plain)(path, idx_bytes({10, 6}, counting_data(30)));
  std::string msg = error_of([&] { read_idx(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "expected 60 bytes of data, found 30")) << msg;
}

TEST_P(IdxRoundTrip, TrailingGarbage) {
  TempDir dir;
  const std::string path = dir.file("g.idx");
  (GetParam() ? write_gz : write_plain)(path, idx_bytes({2, 2}, counting_data(5)));
  std::string msg = error_of([&] { read_idx(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "trailing")) << msg;
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxRoundTrip, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "gzip" : "plain"; });

TEST(Idx, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("missing.gz");
  std::string msg = error_of([&] { read_idx(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
}

TEST(Idx, BadMagic) {
  TempDir dir;
  const std::string path = dir.file("bad");
  write_plain(path, "PK\x03\x04 this is a zip file, not IDX");
  std::string msg = error_of([&] { read_idx(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "magic")) << msg;
}

TEST(Idx, UnsupportedType) {
  TempDir dir;
  const std::string path = dir.file("float.idx");
  write_plain(path, idx_bytes({2}, std::string(8, '\0'), 0x0D));
  std::string msg = error_of([&] { read_idx(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "type code 0xd")) << msg;
}

TEST(Idx, ShortHeader) {
  TempDir dir;
  const std::string path = dir.file("short");
  write_plain(path, std::string("\0\0\x08\x03\0\0", 6));
  std::string msg = error_of([&] { read_idx(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  write_plain(path, std::string("\0\0", 2));
  msg = error_of([&] { read_idx(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
}

TEST(Idx, CutGzipStream) {
  TempDir dir;
  const std::string whole = dir.file("whole.gz"), cut = dir.file("cut.gz");
  // Incompressible-ish data so the compressed stream is long enough to cut in the middle.
  std::string data(4000, '\0');
  uint32_t x = 1;
  for (char& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  write_gz(whole, idx_bytes({4000}, data));
  std::string bytes;
  {
    std::ifstream in(whole, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  write_plain(cut, bytes.substr(0, bytes.size() / 2));
  std::string msg = error_of([&] { read_idx(cut); });
  EXPECT_TRUE(contains(msg, cut)) << msg;
}

TEST(Idx, DatasetCountMismatchNamesBothFiles) {
  TempDir dir;
  const std::string images = dir.file("images.idx"), labels = dir.file("labels.idx");
  write_plain(images, idx_bytes({3, 2, 2}, counting_data(12)));
  write_plain(labels, idx_bytes({2}, std::string{1, 2}));
  std::string msg = error_of([&] { read_idx_dataset(images, labels); });
  EXPECT_TRUE(contains(msg, images)) << msg;
  EXPECT_TRUE(contains(msg, labels)) << msg;
}

TEST(Idx, FashionMnist) {
  const std::string root = "/usr/share/datasets/fashion-mnist/";
  if (!std::filesystem::exists(root + "train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no Fashion-MNIST at " << root;
  struct Split {
    const char* prefix;
    int64_t n;
  };
  for (Split s : {Split{"train", 60000}, Split{"t10k", 10000}}) {
    ImageDataset ds = read_idx_dataset(root + s.prefix + "-images-idx3-ubyte.gz", root + s.prefix + "-labels-idx1-ubyte.gz");
    EXPECT_EQ(ds.images.shape(), Shape({s.n, 28, 28, 1})) << s.prefix;
    ASSERT_EQ(ds.labels.shape(), Shape({s.n})) << s.prefix;
    std::vector<int64_t> counts(10, 0);
    for (int64_t i = 0; i < s.n; ++i) {
      int32_t label = ds.labels.data<int32_t>()[i];
      ASSERT_GE(label, 0);
      ASSERT_LE(label, 9);
      ++counts[label];
    }
    // Fashion-MNIST is balanced: 6000 / 1000 of each class.
    for (int64_t c : counts) EXPECT_EQ(c, s.n / 10) << s.prefix;
  }
}

}  // namespace
}  // namespace kiln::io
