#include "io/csv_reader.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>

#include "core/thread_pool.h"
#include "io/number_parse.h"

namespace kiln::io {
namespace csv_detail {
namespace {

std::atomic<int64_t> g_live_chunks{0};

// Largest buffer a record may grow one to: a record this long is almost surely a quote left
// open, and the cap keeps FieldSpan's 32-bit offsets valid.
constexpr size_t kMaxChunkBytes = size_t{512} << 20;
size_t max_buffer_bytes(size_t chunk_bytes) { return std::max<size_t>(size_t{256} << 20, 4 * chunk_bytes); }

constexpr char kBom[] = "\xEF\xBB\xBF";

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A file's bytes, streamed: plain read(2), or zlib for names ending in ".gz".
class Source {
 public:
  explicit Source(const std::string& path) : path_(path) {
    errno = 0;
    if (ends_with(path, ".gz")) {
      gz_ = gzopen(path.c_str(), "rb");
      if (!gz_) fail("file ", path, ": cannot open: ", errno ? std::strerror(errno) : "out of memory");
      gzbuffer(gz_, 1 << 18);
    } else {
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) fail("file ", path, ": cannot open: ", std::strerror(errno));
      ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
  }
  ~Source() {
    if (gz_) gzclose(gz_);
    if (fd_ >= 0) ::close(fd_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Up to n bytes; 0 only at the end of the data.
  size_t read(char* dst, size_t n) {
    n = std::min<size_t>(n, 1u << 30);
    if (gz_) {
      int got = gzread(gz_, dst, static_cast<unsigned>(n));
      int code = Z_OK;
      const char* msg = gzerror(gz_, &code);
      if (got < 0) fail("file ", path_, ": cannot read: ", code == Z_ERRNO ? std::strerror(errno) : msg);
      // zlib reports a stream cut short as Z_BUF_ERROR after returning what it could inflate.
      if (got == 0 && code == Z_BUF_ERROR)
        fail("file ", path_, ": the compressed stream ends early (truncated .gz?)");
      if (got == 0 && code != Z_OK) fail("file ", path_, ": corrupt compressed data: ", msg);
      return static_cast<size_t>(got);
    }
    for (;;) {
      ssize_t got = ::read(fd_, dst, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) fail("file ", path_, ": cannot read: ", std::strerror(errno));
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  gzFile gz_ = nullptr;
};

// The text of a file's first non-blank record and the line it starts on, or nothing when the
// file holds none.
std::optional<std::string> first_record(const std::string& path, size_t chunk_bytes, const Syntax& syntax,
                                        int64_t* line) {
  Source source(path);
  std::string text;
  bool eof = false;
  size_t begin = 0, end = kNoRecordEnd;
  const size_t limit = max_buffer_bytes(chunk_bytes);
  for (size_t want = 64 << 10;; want *= 2) {
    while (text.size() < want && !eof) {
      size_t old = text.size();
      text.resize(want);
      size_t got = source.read(text.data() + old, want - old);
      text.resize(old + got);
      eof = got == 0;
    }
    begin = text.compare(0, 3, kBom) == 0 ? 3 : 0;
    const bool found = skip_blank_lines(text.data(), text.size(), &begin);
    if (found) end = first_record_end(text.data(), text.size(), begin, syntax);
    if (eof || end != kNoRecordEnd) {
      if (!found) return std::nullopt;
      break;
    }
    if (want >= limit)
      fail("file ", path, ": the first record is longer than ", limit, " bytes (is a quote left open?)");
  }
  if (end == kNoRecordEnd) end = text.size();
  *line = 1 + count_newlines(text.data(), text.data() + begin);
  return text.substr(begin, end - begin);
}

std::vector<std::string> parse_header(const std::string& path, std::string record, int64_t line,
                                      const Syntax& syntax) {
  const size_t size = record.size();
  record.resize(size + kPadding);
  Rows rows;
  parse_records(record.data(), size, line, Layout(), syntax, &rows);
  if (!rows.issues.empty()) {
    const Issue& issue = rows.issues.front();
    fail(path, ":", issue.line, issue.column > 0 ? str_cat(":", issue.column) : "", ": ", issue.reason,
         " (in the header)");
  }
  KILN_CHECK(rows.rows() == 1, "header of ", path, " parsed as ", rows.rows(), " records");
  std::vector<std::string> names;
  for (int c = 0; c < rows.columns; ++c)
    names.emplace_back(record.data() + rows.field(0, c).begin, rows.field(0, c).size);
  return names;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + names[i];
  return out;
}

}  // namespace

NaSet::NaSet(const std::vector<std::string>& values) : values_(values) {
  for (const std::string& v : values) {
    if (v.empty()) {
      empty_ = true;
      continue;
    }
    lengths_ |= uint64_t{1} << std::min<size_t>(v.size(), 63);
    const auto first = static_cast<unsigned char>(v[0]);
    first_bytes_[first >> 6] |= uint64_t{1} << (first & 63);
  }
}

int64_t live_chunks() { return g_live_chunks.load(); }

// One for_each_chunk run: a reader thread cuts the files into chunks at record boundaries and
// queues them; `threads` workers (the caller among them) parse chunks and hand them to fn. The
// queue holds at most `threads` chunks and chunk objects are recycled, so at most
// 2 * threads + 1 exist: queued, in workers' hands, and the one the reader fills.
class Pipeline {
 public:
  Pipeline(CsvReader& reader, const std::function<void(const CsvChunk&)>& fn)
      : reader_(reader),
        options_(reader.options_),
        syntax_{options_.delimiter, options_.quote, options_.validate_utf8},
        fn_(fn),
        capacity_(static_cast<size_t>(options_.threads)) {}

  CsvStats run() {
    {
      ThreadPool pool(options_.threads);
      pool.submit([this] { guarded([this] { read_all(); }); });
      for (int i = 1; i < options_.threads; ++i) pool.submit([this] { guarded([this] { work(); }); });
      guarded([this] { work(); });
    }  // joins the pool
    if (error_) std::rethrow_exception(error_);
    return CsvStats{rows_.load(), bad_rows_.load(), bytes_.load(), files_.load()};
  }

 private:
  template <typename Fn>
  void guarded(Fn body) {
    try {
      body();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      stop_ = true;
      work_ready_.notify_all();
      space_ready_.notify_all();
    }
  }

  std::unique_ptr<CsvChunk> acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) return std::unique_ptr<CsvChunk>(new CsvChunk());
    std::unique_ptr<CsvChunk> chunk = std::move(free_.back());
    free_.pop_back();
    return chunk;
  }
  void release(std::unique_ptr<CsvChunk> chunk) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(chunk));
  }

  // Makes room for `bytes` of text plus padding, keeping the first `keep` bytes.
  static void reserve(CsvChunk& chunk, size_t bytes, size_t keep) {
    if (chunk.capacity_ >= bytes) return;
    auto buffer = std::make_unique_for_overwrite<char[]>(bytes + kPadding);
    if (keep) std::memcpy(buffer.get(), chunk.buffer_.get(), keep);
    chunk.buffer_ = std::move(buffer);
    chunk.capacity_ = bytes;
  }

  // False when the run is stopping.
  bool push(std::unique_ptr<CsvChunk> chunk) {
    std::unique_lock<std::mutex> lock(mutex_);
    space_ready_.wait(lock, [&] { return stop_ || queue_.size() < capacity_; });
    if (stop_) return false;
    queue_.push_back(std::move(chunk));
    work_ready_.notify_one();
    return true;
  }

  void read_all() {
    struct Done {  // wakes the workers however reading ends
      Pipeline* p;
      ~Done() {
        std::lock_guard<std::mutex> lock(p->mutex_);
        p->reading_done_ = true;
        p->work_ready_.notify_all();
      }
    } done{this};
    int64_t index = 0;
    for (const std::string& path : reader_.files_) {
      if (!read_file(path, &index)) return;
      ++files_;
    }
  }

  bool read_file(const std::string& path, int64_t* index) {
    Source source(path);
    const size_t chunk_bytes = options_.chunk_bytes;
    const size_t limit = max_buffer_bytes(chunk_bytes);
    std::vector<char> carry;  // the incomplete record at the end of the last buffer
    int64_t line = 1;
    bool at_start = true, eof = false;
    while (!eof) {
      std::unique_ptr<CsvChunk> chunk = acquire();
      size_t target = std::max(chunk_bytes, carry.size());
      reserve(*chunk, target, 0);
      char* buf = chunk->buffer_.get();
      if (!carry.empty()) std::memcpy(buf, carry.data(), carry.size());
      size_t filled = carry.size(), begin = 0, cut = 0;
      for (;;) {
        while (filled < target && !eof) {
          size_t got = source.read(buf + filled, target - filled);
          bytes_ += static_cast<int64_t>(got);
          filled += got;
          eof = got == 0;
        }
        bool complete = true;
        if (at_start) complete = skip_file_start(path, buf, filled, eof, &begin);
        if (complete) {
          cut = eof ? filled : begin + last_record_end(buf + begin, filled - begin, syntax_);
          complete = cut > begin || eof;
        }
        if (complete) break;
        // No whole record in the buffer: grow it and read on.
        if (target >= limit)
          fail(path, ":", line, ": a record longer than ", limit, " bytes (is a quote left open?)");
        target = std::min(target * 2, limit);
        reserve(*chunk, target, filled);
        buf = chunk->buffer_.get();
      }
      at_start = false;
      std::memset(buf + filled, 0, kPadding);
      carry.assign(buf + cut, buf + filled);
      chunk->first_line_ = line + count_newlines(buf, buf + begin);
      line = chunk->first_line_ + count_newlines(buf + begin, buf + cut);
      if (cut == begin) {
        release(std::move(chunk));
        continue;
      }
      chunk->index_ = (*index)++;
      chunk->file_ = &path;
      chunk->text_ = buf + begin;
      chunk->size_ = cut - begin;
      if (!push(std::move(chunk))) return false;
    }
    return true;
  }

  // At a file's start: skips a byte order mark, and the header (after any blank lines) when
  // there is one. False when more bytes are needed to see where the header ends.
  bool skip_file_start(const std::string& path, const char* buf, size_t filled, bool eof, size_t* begin) {
    if (filled < 3 && !eof) return false;
    size_t pos = filled >= 3 && std::memcmp(buf, kBom, 3) == 0 ? 3 : 0;
    if (options_.header) {
      if (!skip_blank_lines(buf, filled, &pos)) {
        if (!eof) return false;
        fail("file ", path, " is empty (no header row)");
      }
      size_t end = first_record_end(buf, filled, pos, syntax_);
      if (end == kNoRecordEnd) {
        if (!eof) return false;
        end = filled;
      }
      pos = end;
    }
    *begin = pos;
    return true;
  }

  void work() {
    for (;;) {
      std::unique_ptr<CsvChunk> chunk;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_ready_.wait(lock, [&] { return stop_ || !queue_.empty() || reading_done_; });
        if (stop_ || queue_.empty()) return;
        chunk = std::move(queue_.front());
        queue_.pop_front();
        space_ready_.notify_one();
      }
      chunk->na_ = &reader_.na_;
      parse_records(chunk->text_, chunk->size_, chunk->first_line_, reader_.layout_, syntax_, &chunk->rows_);
      for (const Issue& issue : chunk->rows_.issues) {
        ++bad_rows_;
        reader_.budget_->add(BadRow{*chunk->file_, issue.line, issue.column, issue.reason});
      }
      rows_ += chunk->rows();
      fn_(*chunk);
      release(std::move(chunk));
    }
  }

  CsvReader& reader_;
  const CsvOptions& options_;
  const Syntax syntax_;
  const std::function<void(const CsvChunk&)>& fn_;
  const size_t capacity_;

  std::mutex mutex_;
  std::condition_variable work_ready_, space_ready_;
  std::deque<std::unique_ptr<CsvChunk>> queue_;
  std::vector<std::unique_ptr<CsvChunk>> free_;
  bool reading_done_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::atomic<int64_t> rows_{0}, bad_rows_{0}, bytes_{0}, files_{0};
};

}  // namespace csv_detail

CsvChunk::CsvChunk() { ++csv_detail::g_live_chunks; }
CsvChunk::~CsvChunk() { --csv_detail::g_live_chunks; }

void CsvChunk::parse_numbers(const std::string_view* values, size_t n, double* out, uint8_t* ok) const {
  static_assert(csv_detail::kPadding >= 17, "parse_padded_doubles reads 17 bytes from a field's start");
  parse_padded_doubles(values, n, out, ok);
}

CsvReader::CsvReader(std::vector<std::string> files, CsvOptions options, std::shared_ptr<ErrorBudget> budget)
    : files_(std::move(files)),
      options_(std::move(options)),
      budget_(budget ? std::move(budget) : std::make_shared<ErrorBudget>(0)),
      na_(options_.na_values) {
  const CsvOptions& o = options_;
  if (files_.empty()) fail("no CSV input files");
  auto special = [](char c) { return c == '\n' || c == '\r'; };
  if (special(o.delimiter) || special(o.quote)) fail("csv.delimiter and csv.quote cannot be line breaks");
  if (o.delimiter == o.quote) fail("csv.delimiter and csv.quote must differ (both are '", o.delimiter, "')");
  if (o.threads < 1) fail("csv threads must be at least 1, got ", o.threads);
  if (o.chunk_bytes == 0 || o.chunk_bytes > csv_detail::kMaxChunkBytes)
    fail("csv chunk_bytes must be between 1 and ", csv_detail::kMaxChunkBytes, ", got ", o.chunk_bytes);
  if (!o.header && o.column_names.empty()) fail("csv.column_names is required when csv.header is false");

  const csv_detail::Syntax syntax{o.delimiter, o.quote, o.validate_utf8};
  std::vector<std::string> first_header;
  for (size_t i = 0; i < files_.size(); ++i) {
    const std::string& path = files_[i];
    int64_t line = 0;
    std::optional<std::string> text = csv_detail::first_record(path, o.chunk_bytes, syntax, &line);
    if (!text) fail("file ", path, " is empty", o.header ? " (no header row)" : "");
    if (!o.header) continue;
    std::vector<std::string> header = csv_detail::parse_header(path, std::move(*text), line, syntax);
    if (i == 0) {
      first_header = std::move(header);
      if (!o.column_names.empty() && o.column_names.size() != first_header.size())
        fail("file ", path, ": the header has ", first_header.size(), " columns but csv.column_names names ",
             o.column_names.size());
      continue;
    }
    if (header != first_header) {
      const std::vector<std::string>& h = header;
      size_t k = 0;
      while (k < h.size() && k < first_header.size() && h[k] == first_header[k]) ++k;
      std::string detail =
          k < h.size() && k < first_header.size()
              ? str_cat("column ", k + 1, " is '", h[k], "' but '", first_header[k], "' in ", files_[0])
              : str_cat("it has ", h.size(), " columns but ", files_[0], " has ", first_header.size());
      fail("file ", path, ": the header differs from the first file's: ", detail, " (header: ", csv_detail::join(h),
           ")");
    }
  }
  columns_ = o.column_names.empty() ? first_header : o.column_names;
  for (size_t c = 0; c < columns_.size(); ++c)
    if (!column_index_.emplace(columns_[c], static_cast<int>(c)).second)
      fail(o.header && o.column_names.empty() ? "file " + files_[0] + ": the header"
                                              : std::string("csv.column_names"),
           " names column '", columns_[c], "' twice");
  layout_ = csv_detail::Layout(static_cast<int>(columns_.size()));
}

void CsvReader::select_columns(const std::vector<int>& columns) {
  layout_ = csv_detail::Layout(static_cast<int>(columns_.size()), columns);
}

int CsvReader::column_index(const std::string& name) const {
  auto it = column_index_.find(name);
  return it == column_index_.end() ? -1 : it->second;
}

void CsvReader::for_each_chunk(const std::function<void(const CsvChunk&)>& fn) {
  stats_ = CsvStats{};
  csv_detail::Pipeline pipeline(*this, fn);
  stats_ = pipeline.run();
}

}  // namespace kiln::io
