#include "io/example_shard.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "io/crc32c.h"
#include "io/error_budget.h"
#include "io/json_text.h"

namespace kiln::io {

namespace {

constexpr size_t kMagicBytes = sizeof(kExampleShardMagic);
constexpr size_t kTrailerBytes = 8 + kMagicBytes;  // footer length, magic
// A footer larger than this is not one Kiln wrote (about 100 bytes per block).
constexpr uint64_t kMaxFooterBytes = 256ull << 20;

constexpr char kChecksumMismatch[] = "checksum mismatch (the file is corrupt)";

uint64_t padded(uint64_t bytes) { return (bytes + 7) / 8 * 8; }

const char* label_name(const ExampleShardSchema& s) {
  if (!s.has_label) return "none";
  return s.label_dtype == DType::i32 ? "i32" : "f32";
}

void check_block(const ExampleShardSchema& s, const ExampleBlock& b) {
  KILN_CHECK(b.dense.defined() && b.dense.dtype() == DType::f32 && b.dense.dim(0) == b.rows &&
                 b.dense.dim(1) == s.dense_width,
             "example block: dense must be f32 [", b.rows, ", ", s.dense_width, "]");
  KILN_CHECK(b.ids.size() == s.ids_features.size() && b.offsets.size() == s.ids_features.size(),
             "example block: ", b.ids.size(), " ids inputs, the schema has ", s.ids_features.size());
  for (size_t f = 0; f < b.ids.size(); ++f)
    KILN_CHECK(b.offsets[f].dtype() == DType::i64 && b.offsets[f].numel() == b.rows + 1 &&
                   b.ids[f].dtype() == DType::i64 && b.offsets[f].data<int64_t>()[0] == 0 &&
                   b.ids[f].numel() >= b.offsets[f].data<int64_t>()[b.rows],
               "example block: ids input ", s.ids_features[f], " has inconsistent ids and offsets");
  if (s.has_label)
    KILN_CHECK(b.label.defined() && b.label.dtype() == s.label_dtype && b.label.numel() == b.rows,
               "example block: the label must be ", label_name(s), " [", b.rows, "]");
}

}  // namespace

std::vector<std::pair<std::string, std::string>> example_shard_columns(const ExampleShardSchema& s) {
  std::vector<std::pair<std::string, std::string>> cols = {{"dense", "<f4"}};
  for (const std::string& f : s.ids_features) {
    cols.emplace_back(f + ".lengths", "<i4");
    cols.emplace_back(f + ".ids", "<i8");
  }
  if (s.has_label) cols.emplace_back("label", s.label_dtype == DType::i32 ? "<i4" : "<f4");
  return cols;
}

ExampleShardWriter::ExampleShardWriter(const std::string& path, ExampleShardSchema schema)
    : file_(std::make_unique<AtomicFileWriter>(path)), schema_(std::move(schema)) {
  KILN_CHECK(!schema_.has_label || schema_.label_dtype == DType::f32 || schema_.label_dtype == DType::i32);
  file_->write(kExampleShardMagic, kMagicBytes);
}

ExampleShardWriter::~ExampleShardWriter() = default;

uint64_t ExampleShardWriter::bytes_written() const { return file_->bytes_written(); }

void ExampleShardWriter::append(const ExampleBlock& block) {
  KILN_CHECK(file_, "example shard writer used after commit");
  if (block.rows == 0) return;
  check_block(schema_, block);
  // The block is assembled in memory first: its CRC covers exactly the bytes written.
  std::string bytes;
  ExampleShardBlockInfo info;
  info.offset = file_->bytes_written();
  info.rows = block.rows;
  auto put = [&](const void* data, int64_t count, size_t item) {
    const size_t n = static_cast<size_t>(count) * item;
    bytes.append(static_cast<const char*>(data), n);
    bytes.append(padded(n) - n, '\0');
    info.counts.push_back(count);
  };
  put(block.dense.data<float>(), block.rows * schema_.dense_width, sizeof(float));
  std::vector<int32_t> lengths(static_cast<size_t>(block.rows));
  for (size_t f = 0; f < block.ids.size(); ++f) {
    const int64_t* off = block.offsets[f].data<int64_t>();
    for (int64_t r = 0; r < block.rows; ++r) {
      const int64_t len = off[r + 1] - off[r];
      KILN_CHECK(len >= 0 && len <= INT32_MAX, "example block: bad offsets for ", schema_.ids_features[f]);
      lengths[static_cast<size_t>(r)] = static_cast<int32_t>(len);
    }
    put(lengths.data(), block.rows, sizeof(int32_t));
    put(block.ids[f].data<int64_t>(), off[block.rows], sizeof(int64_t));
  }
  if (schema_.has_label) put(block.label.raw(), block.rows, 4);
  info.bytes = bytes.size();
  info.crc32c = crc32c(bytes);
  file_->write(bytes);
  blocks_.push_back(std::move(info));
  rows_ += block.rows;
}

void ExampleShardWriter::commit() {
  KILN_CHECK(file_, "example shard committed twice");
  std::string j = "{\"format\":\"kiln-example-shard\",\"version\":" + std::to_string(kExampleShardVersion);
  j += ",\"state_fingerprint\":";
  append_json_string(j, schema_.state_fingerprint);
  j += ",\"rows\":" + std::to_string(rows_) + ",\"dense_width\":" + std::to_string(schema_.dense_width);
  j += ",\"label\":\"" + std::string(label_name(schema_)) + "\",\"columns\":[";
  bool first = true;
  for (const auto& [name, dtype] : example_shard_columns(schema_)) {
    j += first ? "{\"name\":" : ",{\"name\":";
    first = false;
    append_json_string(j, name);
    j += ",\"dtype\":\"" + dtype + "\"}";
  }
  j += "],\"blocks\":[";
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const ExampleShardBlockInfo& i = blocks_[b];
    j += b ? ",{" : "{";
    j += "\"offset\":" + std::to_string(i.offset) + ",\"bytes\":" + std::to_string(i.bytes) +
         ",\"rows\":" + std::to_string(i.rows) + ",\"crc32c\":" + std::to_string(i.crc32c) + ",\"counts\":[";
    for (size_t c = 0; c < i.counts.size(); ++c) j += (c ? "," : "") + std::to_string(i.counts[c]);
    j += "]}";
  }
  j += "]}";
  const uint64_t length = j.size();
  unsigned char le[8];
  for (int k = 0; k < 8; ++k) le[k] = static_cast<unsigned char>(length >> (8 * k));
  file_->write(j);
  file_->write(le, 8);
  file_->write(kExampleShardMagic, kMagicBytes);
  file_->commit();
  file_.reset();
}

namespace {

std::string read_at(int fd, const std::string& path, uint64_t offset, uint64_t bytes) {
  std::string buf(bytes, '\0');
  uint64_t done = 0;
  while (done < bytes) {
    ssize_t n = ::pread(fd, buf.data() + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, ": cannot read: ", std::strerror(errno));
    if (n == 0) fail(path, ": ends at byte ", offset + done, ", expected ", offset + bytes, " (truncated)");
    done += static_cast<uint64_t>(n);
  }
  return buf;
}

}  // namespace

ExampleShardReader::ExampleShardReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open example shard ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail(path, ": cannot stat: ", std::strerror(errno));
  const auto size = static_cast<uint64_t>(st.st_size);
  const std::string incomplete = path + ": not a complete Kiln example shard (";
  if (size < kMagicBytes + kTrailerBytes || read_at(fd_, path, 0, kMagicBytes) != std::string(kExampleShardMagic, 8))
    fail(incomplete, "it does not start with KILNEX01)");
  const std::string trailer = read_at(fd_, path, size - kTrailerBytes, kTrailerBytes);
  if (trailer.compare(8, kMagicBytes, kExampleShardMagic, kMagicBytes) != 0)
    fail(incomplete, "no closing KILNEX01: truncated, or its writer was killed)");
  uint64_t footer_bytes = 0;
  for (int k = 7; k >= 0; --k) footer_bytes = footer_bytes << 8 | static_cast<unsigned char>(trailer[static_cast<size_t>(k)]);
  if (footer_bytes > kMaxFooterBytes || footer_bytes > size - kMagicBytes - kTrailerBytes)
    fail(path, ": corrupt footer length ", footer_bytes);
  const uint64_t footer_offset = size - kTrailerBytes - footer_bytes;
  simdjson::padded_string footer(read_at(fd_, path, footer_offset, footer_bytes));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(footer).get(doc) != simdjson::SUCCESS) fail(path, ": corrupt footer (not JSON)");
  try {
    if (std::string_view(doc["format"]) != "kiln-example-shard") fail(path, ": not a Kiln example shard footer");
    const int64_t version = doc["version"];
    if (version != kExampleShardVersion)
      fail(path, ": example shard format version ", version, "; this kiln reads version ", kExampleShardVersion);
    schema_.state_fingerprint = std::string(std::string_view(doc["state_fingerprint"]));
    schema_.dense_width = doc["dense_width"];
    const std::string_view label = doc["label"];
    schema_.has_label = label != "none";
    schema_.label_dtype = label == "i32" ? DType::i32 : DType::f32;
    rows_ = doc["rows"];
    size_t columns = 0;
    for (simdjson::dom::element c : doc["columns"].get_array()) {
      const std::string_view name = c["name"];
      if (name.size() > 4 && name.substr(name.size() - 4) == ".ids")
        schema_.ids_features.emplace_back(name.substr(0, name.size() - 4));
      ++columns;
    }
    if (columns != example_shard_columns(schema_).size()) fail(path, ": the footer's columns do not fit its schema");
    int64_t rows = 0;
    for (simdjson::dom::element b : doc["blocks"].get_array()) {
      ExampleShardBlockInfo info;
      info.offset = uint64_t(b["offset"]);
      info.bytes = uint64_t(b["bytes"]);
      info.rows = int64_t(b["rows"]);
      info.crc32c = static_cast<uint32_t>(uint64_t(b["crc32c"]));
      for (simdjson::dom::element n : b["counts"].get_array()) info.counts.push_back(int64_t(n));
      if (info.offset < kMagicBytes || info.offset + info.bytes > footer_offset || info.counts.size() != columns ||
          info.rows <= 0)
        fail(path, ": footer entry of block ", blocks_.size(), " is inconsistent");
      rows += info.rows;
      blocks_.push_back(std::move(info));
    }
    if (rows != rows_) fail(path, ": the footer says ", rows_, " rows, its blocks hold ", rows);
  } catch (const simdjson::simdjson_error& e) {
    fail(path, ": corrupt footer (", e.what(), ")");
  }
}

ExampleShardReader::~ExampleShardReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::string ExampleShardReader::block_name(int64_t i) const {
  const ExampleShardBlockInfo& info = blocks_[static_cast<size_t>(i)];
  return str_cat("block ", i, " (bytes ", info.offset, "..", info.offset + info.bytes, ", ", info.rows, " rows)");
}

std::optional<std::string> ExampleShardReader::read_checked(int64_t i) const {
  KILN_CHECK(i >= 0 && i < blocks(), "block ", i, " of ", path_, " does not exist");
  const ExampleShardBlockInfo& info = blocks_[static_cast<size_t>(i)];
  std::string bytes = read_at(fd_, path_, info.offset, info.bytes);
  if (crc32c(bytes) != info.crc32c) return std::nullopt;
  return bytes;
}

ExampleBlock ExampleShardReader::read_block(int64_t i) const {
  const std::optional<std::string> bytes = read_checked(i);
  if (!bytes) fail(path_, ": ", block_name(i), ": ", kChecksumMismatch);
  return decode(i, *bytes);
}

std::optional<ExampleBlock> ExampleShardReader::read_block_or_skip(int64_t i, ErrorBudget& budget) const {
  const std::optional<std::string> bytes = read_checked(i);
  if (bytes) return decode(i, *bytes);
  budget.add(BadRow{path_, 0, 0, block_name(i) + ": " + kChecksumMismatch}, kCorruptBlockRows, block_info(i).rows);
  return std::nullopt;
}

ExampleBlock ExampleShardReader::decode(int64_t i, const std::string& bytes) const {
  const ExampleShardBlockInfo& info = blocks_[static_cast<size_t>(i)];
  const std::string where = path_ + ": " + block_name(i);
  ExampleBlock block;
  block.rows = info.rows;
  size_t column = 0;
  uint64_t pos = 0;
  // Copies the next column into a tensor after checking it lies inside the block.
  auto take = [&](DType dtype, Shape shape, int64_t expected) {
    const int64_t count = info.counts[column++];
    if (expected >= 0 && count != expected) fail(where, ": column ", column - 1, " holds ", count, " values, expected ", expected);
    const uint64_t n = static_cast<uint64_t>(count) * dtype_size(dtype);
    if (count < 0 || pos + padded(n) > bytes.size()) fail(where, ": column ", column - 1, " overruns the block");
    Tensor t = Tensor::empty(std::move(shape), dtype);
    if (n) std::memcpy(t.raw(), bytes.data() + pos, n);
    pos += padded(n);
    return t;
  };
  block.dense = take(DType::f32, Shape{info.rows, schema_.dense_width}, info.rows * schema_.dense_width);
  for (size_t f = 0; f < schema_.ids_features.size(); ++f) {
    Tensor lengths = take(DType::i32, Shape{info.rows}, info.rows);
    Tensor offsets = Tensor::empty(Shape{info.rows + 1}, DType::i64);
    int64_t* off = offsets.data<int64_t>();
    off[0] = 0;
    for (int64_t r = 0; r < info.rows; ++r) {
      const int32_t len = lengths.data<int32_t>()[r];
      if (len < 0) fail(where, ": negative id count in ", schema_.ids_features[f]);
      off[r + 1] = off[r] + len;
    }
    block.ids.push_back(take(DType::i64, Shape{std::max<int64_t>(off[info.rows], 1)}, off[info.rows]));
    block.offsets.push_back(std::move(offsets));
  }
  if (schema_.has_label) block.label = take(schema_.label_dtype, Shape{info.rows}, info.rows);
  return block;
}

}  // namespace kiln::io
