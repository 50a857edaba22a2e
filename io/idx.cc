#include "io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace kiln::io {
namespace {

constexpr int kUnsignedByte = 0x08;
// Far above any real IDX file; guards the size computation against a corrupt header.
constexpr uint64_t kMaxBytes = uint64_t{1} << 40;

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

// Reads up to `size` bytes; returns how many were read (fewer only at end of data). A corrupt
// gzip stream is an error; a gzip stream that simply stops early reads as short data, so the
// caller reports it as truncation with counts.
uint64_t read_up_to(gzFile f, const std::string& path, void* dst, uint64_t size) {
  auto* p = static_cast<char*>(dst);
  uint64_t got = 0;
  while (got < size) {
    // gzread takes an unsigned count; 1 GiB chunks stay well inside it.
    unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(size - got, 1u << 30));
    int n = gzread(f, p + got, chunk);
    if (n < 0) {
      int code = Z_OK;
      const char* msg = gzerror(f, &code);
      fail("file ", path, ": cannot read: ", code == Z_ERRNO ? std::strerror(errno) : msg);
    }
    if (n == 0) break;
    got += static_cast<uint64_t>(n);
  }
  int code = Z_OK;
  const char* msg = gzerror(f, &code);
  if (code != Z_OK && code != Z_BUF_ERROR) fail("file ", path, ": corrupt compressed data: ", msg);
  return got;
}

}  // namespace

Tensor read_idx(const std::string& path) {
  errno = 0;
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) fail("file ", path, ": cannot open: ", errno ? std::strerror(errno) : "out of memory");

  unsigned char magic[4];
  uint64_t got = read_up_to(file.get(), path, magic, 4);
  if (got < 4) fail("file ", path, ": too short for an IDX header (", got, " bytes)");
  if (magic[0] != 0 || magic[1] != 0) fail("file ", path, ": bad magic number (not an IDX file)");
  if (magic[2] != kUnsignedByte)
    fail("file ", path, ": unsupported IDX type code 0x", std::hex, int{magic[2]},
         " (only 0x08, unsigned byte, is supported)");

  const int rank = magic[3];
  if (rank == 0) fail("file ", path, ": IDX header declares rank 0");
  std::vector<unsigned char> raw_dims(4 * static_cast<size_t>(rank));
  got = read_up_to(file.get(), path, raw_dims.data(), raw_dims.size());
  if (got < raw_dims.size()) fail("file ", path, ": header truncated in the dimensions");
  std::vector<int64_t> dims(rank);
  uint64_t bytes = 1;
  for (int i = 0; i < rank; ++i) {
    const unsigned char* d = &raw_dims[4 * static_cast<size_t>(i)];
    uint64_t dim = (uint64_t{d[0]} << 24) | (uint64_t{d[1]} << 16) | (uint64_t{d[2]} << 8) | d[3];
    dims[i] = static_cast<int64_t>(dim);
    bytes *= dim;  // each dim < 2^32 and the running product is checked below, so no overflow
    if (bytes > kMaxBytes) fail("file ", path, ": implausible dimensions in the header");
  }

  Tensor out = Tensor::empty(Shape(std::move(dims)), DType::u8);
  got = read_up_to(file.get(), path, out.raw(), bytes);
  if (got < bytes) {
    int code = Z_OK;
    gzerror(file.get(), &code);
    fail("file ", path, ": expected ", bytes, " bytes of data, found ", got,
         code == Z_BUF_ERROR ? " (the compressed stream ends early)" : "");
  }
  unsigned char extra;
  if (read_up_to(file.get(), path, &extra, 1) != 0)
    fail("file ", path, ": trailing data after the expected ", bytes, " bytes");
  return out;
}

ImageDataset read_idx_dataset(const std::string& images_path, const std::string& labels_path) {
  Tensor images = read_idx(images_path);
  Tensor labels = read_idx(labels_path);
  const Shape& is = images.shape();
  if (is.rank() == 3) {
    images = images.reshape({is[0], is[1], is[2], 1});
  } else if (is.rank() != 4) {
    fail("file ", images_path, ": expected images of rank 3 [n, h, w] or 4 [n, h, w, c], found rank ",
         is.rank(), " ", is.to_string());
  }
  if (labels.shape().rank() != 1)
    fail("file ", labels_path, ": expected labels of rank 1 [n], found ", labels.shape().to_string());
  if (labels.dim(0) != images.dim(0))
    fail("images ", images_path, " hold ", images.dim(0), " examples but labels ", labels_path, " hold ",
         labels.dim(0));

  ImageDataset ds;
  ds.images = images;
  ds.labels = Tensor::empty({labels.dim(0)}, DType::i32);
  const uint8_t* src = labels.data<uint8_t>();
  int32_t* dst = ds.labels.data<int32_t>();
  for (int64_t i = 0; i < labels.dim(0); ++i) dst[i] = src[i];
  return ds;
}

}  // namespace kiln::io
