#include "io/checkpoint_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/crc32c.h"

namespace kiln::io {

static_assert(std::endian::native == std::endian::little, "checkpoint data is written as raw little-endian");

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kFixedHeader = 48;
constexpr uint64_t kAlignment = 64;
// Header sizes beyond this are corruption, not checkpoints (names and metadata are small).
constexpr uint64_t kMaxHeader = uint64_t{1} << 32;

// On-disk dtype codes: fixed here, independent of the numbering of kiln::DType.
uint8_t dtype_code(DType t) {
  switch (t) {
    case DType::f32: return 1;
    case DType::bf16: return 2;
    case DType::f16: return 3;
    case DType::i32: return 4;
    case DType::i64: return 5;
    case DType::u8: return 6;
    case DType::f64: return 7;
  }
  return 0;
}

bool dtype_from_code(uint8_t code, DType* out) {
  static constexpr DType kByCode[] = {DType::f32, DType::bf16, DType::f16, DType::i32,
                                      DType::i64, DType::u8,   DType::f64};
  if (code < 1 || code > std::size(kByCode)) return false;
  *out = kByCode[code - 1];
  return true;
}

uint64_t align_up(uint64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

template <typename T>
void put(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

template <typename T>
void put_at(std::string& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof(T));
}

// Bounds-checked reads from the header; running off the end means a corrupt header.
class Cursor {
 public:
  Cursor(const std::string& data, size_t pos, const std::string& path) : data_(data), pos_(pos), path_(path) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string bytes(uint64_t n) {
    need(n);
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  size_t pos() const { return pos_; }

 private:
  void need(uint64_t n) const {
    if (n > data_.size() - pos_) fail("checkpoint ", path_, " has a corrupt header (entry past its end)");
  }
  const std::string& data_;
  size_t pos_;
  const std::string& path_;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads exactly `size` bytes at `offset`; returns the count actually read (short at end of file).
uint64_t pread_full(int fd, void* dst, uint64_t size, uint64_t offset, const std::string& path) {
  auto* p = static_cast<char*>(dst);
  uint64_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd, p + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read checkpoint ", path, ": ", std::strerror(errno));
    if (n == 0) break;
    got += static_cast<uint64_t>(n);
  }
  return got;
}

}  // namespace

const Tensor* CheckpointFile::find(const std::string& name) const {
  for (const NamedTensor& t : tensors)
    if (t.name == name) return &t.tensor;
  return nullptr;
}

void write_checkpoint_file(const std::string& path, const std::string& metadata,
                           const std::vector<NamedTensor>& tensors) {
  std::set<std::string> names;
  for (const NamedTensor& t : tensors) {
    if (t.name.empty()) fail("checkpoint ", path, ": a tensor has an empty name");
    if (!names.insert(t.name).second) fail("checkpoint ", path, ": duplicate tensor name ", t.name);
    if (!t.tensor.defined()) fail("checkpoint ", path, ": tensor ", t.name, " is undefined");
    if (!t.tensor.device().is_cpu())
      fail("checkpoint ", path, ": tensor ", t.name, " is on ", t.tensor.device().to_string(),
           "; copy it to the CPU first");
    if (t.tensor.shape().rank() > 255) fail("checkpoint ", path, ": tensor ", t.name, " has rank > 255");
  }

  std::string header(kFixedHeader, '\0');
  std::memcpy(header.data(), kMagic, sizeof(kMagic));
  put_at<uint32_t>(header, 8, kVersion);
  header += metadata;
  std::vector<size_t> offset_slots;  // where each entry's data offset goes, patched below
  for (const NamedTensor& t : tensors) {
    put<uint32_t>(header, static_cast<uint32_t>(t.name.size()));
    header += t.name;
    put<uint8_t>(header, dtype_code(t.tensor.dtype()));
    put<uint8_t>(header, static_cast<uint8_t>(t.tensor.shape().rank()));
    put<uint16_t>(header, 0);
    for (int64_t d : t.tensor.shape().dims()) put<int64_t>(header, d);
    offset_slots.push_back(header.size());
    put<uint64_t>(header, 0);
    put<uint64_t>(header, t.tensor.bytes());
    put<uint32_t>(header, crc32c(t.tensor.raw(), t.tensor.bytes()));
  }
  uint64_t offset = align_up(header.size());
  std::vector<uint64_t> offsets;
  for (size_t i = 0; i < tensors.size(); ++i) {
    offsets.push_back(offset);
    put_at<uint64_t>(header, offset_slots[i], offset);
    offset = align_up(offset + tensors[i].tensor.bytes());
  }
  const uint64_t file_size = tensors.empty() ? header.size() : offsets.back() + tensors.back().tensor.bytes();
  put_at<uint64_t>(header, 16, header.size());
  put_at<uint64_t>(header, 24, file_size);
  put_at<uint64_t>(header, 32, metadata.size());
  put_at<uint64_t>(header, 40, tensors.size());
  put_at<uint32_t>(header, 12, crc32c(header.data() + 16, header.size() - 16));

  // Streamed to a temporary file: the tensors are never copied into one big buffer.
  AtomicFileWriter out(path);
  out.write(header);
  for (size_t i = 0; i < tensors.size(); ++i) {
    out.write_zeros(offsets[i] - out.bytes_written());
    out.write(tensors[i].tensor.raw(), tensors[i].tensor.bytes());
  }
  KILN_CHECK(out.bytes_written() == file_size);
  out.commit();
}

CheckpointFile read_checkpoint_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail("cannot open checkpoint ", path, ": ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail("cannot stat checkpoint ", path, ": ", std::strerror(errno));
  const auto actual_size = static_cast<uint64_t>(st.st_size);

  std::string header(kFixedHeader, '\0');
  const uint64_t got = pread_full(fd.get(), header.data(), kFixedHeader, 0, path);
  if (std::memcmp(header.data(), kMagic, std::min<uint64_t>(got, sizeof(kMagic))) != 0)
    fail("file ", path, " is not a Kiln checkpoint (bad magic)");
  if (got < kFixedHeader) fail("checkpoint ", path, " is truncated (", got, " bytes)");
  Cursor fixed(header, 8, path);
  const auto version = fixed.get<uint32_t>();
  if (version != kVersion) fail("checkpoint ", path, " has unsupported format version ", version);
  const auto header_crc = fixed.get<uint32_t>();
  const auto header_size = fixed.get<uint64_t>();
  const auto file_size = fixed.get<uint64_t>();
  const auto metadata_size = fixed.get<uint64_t>();
  const auto tensor_count = fixed.get<uint64_t>();
  if (header_size < kFixedHeader || header_size > kMaxHeader)
    fail("checkpoint ", path, " has a corrupt header (header size ", header_size, ")");
  if (header_size > actual_size)
    fail("checkpoint ", path, " is truncated (", actual_size, " bytes, header alone needs ", header_size, ")");

  header.resize(header_size);
  if (pread_full(fd.get(), header.data() + kFixedHeader, header_size - kFixedHeader, kFixedHeader, path) !=
      header_size - kFixedHeader)
    fail("checkpoint ", path, " is truncated");
  if (crc32c(header.data() + 16, header_size - 16) != header_crc)
    fail("checksum mismatch in the header of ", path);
  // Sizes are trusted only now that the checksum vouches for them.
  if (actual_size < file_size) fail("checkpoint ", path, " is truncated (", actual_size, " of ", file_size, " bytes)");
  if (actual_size > file_size)
    fail("checkpoint ", path, " has ", actual_size - file_size, " unexpected bytes after its end");

  CheckpointFile result;
  Cursor cur(header, kFixedHeader, path);
  result.metadata = cur.bytes(metadata_size);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    std::string name = cur.bytes(cur.get<uint32_t>());
    DType dtype;
    if (!dtype_from_code(cur.get<uint8_t>(), &dtype))
      fail("checkpoint ", path, ": tensor ", name, " has an unknown dtype code");
    const int rank = cur.get<uint8_t>();
    cur.get<uint16_t>();
    std::vector<int64_t> dims(rank);
    for (int64_t& d : dims) {
      d = cur.get<int64_t>();
      if (d < 0) fail("checkpoint ", path, ": tensor ", name, " has a negative dimension");
    }
    const auto offset = cur.get<uint64_t>();
    const auto size = cur.get<uint64_t>();
    const auto crc = cur.get<uint32_t>();
    Shape shape(std::move(dims));
    if (size != static_cast<uint64_t>(shape.numel()) * dtype_size(dtype) || offset % kAlignment != 0 ||
        offset < header_size || offset > file_size || size > file_size - offset)
      fail("checkpoint ", path, ": tensor ", name, " has an inconsistent entry (", shape.to_string(), " ",
           dtype_name(dtype), ", ", size, " bytes at ", offset, ")");
    Tensor t = Tensor::empty(shape, dtype);
    if (pread_full(fd.get(), t.raw(), size, offset, path) != size)
      fail("checkpoint ", path, " is truncated");  // shrank while being read
    if (crc32c(t.raw(), size) != crc) fail("checksum mismatch in tensor ", name, " of ", path);
    result.tensors.push_back({std::move(name), std::move(t)});
  }
  if (cur.pos() != header_size) fail("checkpoint ", path, " has a corrupt header (size mismatch)");
  return result;
}

}  // namespace kiln::io
