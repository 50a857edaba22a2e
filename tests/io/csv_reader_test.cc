// CsvReader: grammar, files (shards, gzip, headers), bad rows, threading and chunking.
#include "io/csv_reader.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "core/error.h"
#include "tests/io/temp_dir.h"

namespace kiln::io {
namespace {

using testing::TempDir;
using Row = std::vector<std::string>;

void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

void write_gz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// Everything a read produced, put back in chunk order.
struct Result {
  std::vector<Row> rows;
  std::vector<int64_t> lines;
  std::vector<std::string> files;                   // per row
  std::vector<std::vector<bool>> na;                // per row and column
  std::vector<std::pair<int64_t, int64_t>> chunks;  // (first line, rows) per chunk
  CsvStats stats;
};

Result read_all(const std::vector<std::string>& files, const CsvOptions& options,
                std::shared_ptr<ErrorBudget> budget = std::make_shared<ErrorBudget>(0),
                const std::vector<int>& selected = {}) {
  CsvReader reader(files, options, std::move(budget));
  if (!selected.empty()) reader.select_columns(selected);
  std::mutex mutex;
  std::map<int64_t, Result> parts;
  reader.for_each_chunk([&](const CsvChunk& chunk) {
    Result part;
    EXPECT_EQ(chunk.columns(), static_cast<int>(reader.column_names().size()));
    for (int64_t r = 0; r < chunk.rows(); ++r) {
      Row row;
      std::vector<bool> na;
      for (int c = 0; c < chunk.columns(); ++c) {
        if (!selected.empty() && std::find(selected.begin(), selected.end(), c) == selected.end()) continue;
        row.emplace_back(chunk.field(r, c));
        na.push_back(chunk.is_na(r, c));
      }
      part.rows.push_back(row);
      part.na.push_back(na);
      part.lines.push_back(chunk.line(r));
      part.files.push_back(chunk.file());
    }
    part.chunks.emplace_back(chunk.rows() ? chunk.line(0) : 0, chunk.rows());
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_TRUE(parts.emplace(chunk.index(), std::move(part)).second) << "chunk " << chunk.index() << " twice";
  });
  Result all;
  int64_t expect_index = 0;
  for (auto& [index, part] : parts) {
    EXPECT_EQ(index, expect_index++) << "chunk indices are not 0..n-1";
    for (size_t i = 0; i < part.rows.size(); ++i) {
      all.rows.push_back(part.rows[i]);
      all.lines.push_back(part.lines[i]);
      all.files.push_back(part.files[i]);
      all.na.push_back(part.na[i]);
    }
    all.chunks.push_back(part.chunks[0]);
  }
  all.stats = reader.stats();
  EXPECT_EQ(all.stats.rows, static_cast<int64_t>(all.rows.size()));
  return all;
}

Result read_text(const std::string& text, CsvOptions options = {},
                 std::shared_ptr<ErrorBudget> budget = std::make_shared<ErrorBudget>(0)) {
  TempDir dir;
  write_file(dir.file("data.csv"), text);
  return read_all({dir.file("data.csv")}, options, std::move(budget));
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(CsvReader, HeaderRowsAndLines) {
  TempDir dir;
  write_file(dir.file("a.csv"), "x,y,name\n1,2,ab\n3,4,cd\n");
  CsvReader reader({dir.file("a.csv")}, {}, nullptr);
  EXPECT_EQ(reader.column_names(), (Row{"x", "y", "name"}));
  EXPECT_EQ(reader.column_index("y"), 1);
  EXPECT_EQ(reader.column_index("z"), -1);
  Result r = read_all({dir.file("a.csv")}, {});
  EXPECT_EQ(r.rows, (std::vector<Row>{{"1", "2", "ab"}, {"3", "4", "cd"}}));
  EXPECT_EQ(r.lines, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.files, (std::vector<std::string>{dir.file("a.csv"), dir.file("a.csv")}));
  EXPECT_EQ(r.stats.files, 1);
  EXPECT_EQ(r.stats.bad_rows, 0);
  EXPECT_EQ(r.stats.bytes, 23);
}

TEST(CsvReader, Quoting) {
  Result r = read_text(
      "a,b,c\n"
      "\"x,y\",\"say \"\"hi\"\"\",\"\"\n"   // embedded delimiter, doubled quotes, empty quoted
      "\"two\nlines\",2,\"\"\"\"\n"         // newline inside quotes; a lone escaped quote
      "plain,\"three\r\nline\nfield\",3\n"  // CRLF and LF inside quotes
      "5\"2,it's,\"\"\"a\"\",b\"\n"         // a quote inside an unquoted field is data
      "last,row,here\n");
  ASSERT_EQ(r.rows.size(), 5u);
  EXPECT_EQ(r.rows[0], (Row{"x,y", "say \"hi\"", ""}));
  EXPECT_EQ(r.rows[1], (Row{"two\nlines", "2", "\""}));
  EXPECT_EQ(r.rows[2], (Row{"plain", "three\r\nline\nfield", "3"}));
  EXPECT_EQ(r.rows[3], (Row{"5\"2", "it's", "\"a\",b"}));
  EXPECT_EQ(r.rows[4], (Row{"last", "row", "here"}));
  EXPECT_EQ(r.lines, (std::vector<int64_t>{2, 3, 5, 8, 9}));
}

TEST(CsvReader, QuotedHeader) {
  Result r = read_text("\"a,1\",\"b\"\"\",c\n1,2,3\n");
  TempDir dir;
  write_file(dir.file("h.csv"), "\"a,1\",\"b\"\"\",c\n1,2,3\n");
  CsvReader reader({dir.file("h.csv")}, {}, nullptr);
  EXPECT_EQ(reader.column_names(), (Row{"a,1", "b\"", "c"}));
  EXPECT_EQ(r.rows, (std::vector<Row>{{"1", "2", "3"}}));
}

TEST(CsvReader, CrlfBlankLinesAndMissingFinalNewline) {
  Result r = read_text("\r\n\na,b\r\n1,2\r\n\r\n\n3,4\r\n,\r\n\"\",x\r\n5,6");
  EXPECT_EQ(r.rows, (std::vector<Row>{{"1", "2"}, {"3", "4"}, {"", ""}, {"", "x"}, {"5", "6"}}));
  EXPECT_EQ(r.lines, (std::vector<int64_t>{4, 7, 8, 9, 10}));
  Result lf = read_text("a,b\n1,2\n3,4");
  EXPECT_EQ(lf.rows, (std::vector<Row>{{"1", "2"}, {"3", "4"}}));
  Result quoted_last = read_text("a,b\n1,\"2\"");
  EXPECT_EQ(quoted_last.rows, (std::vector<Row>{{"1", "2"}}));
  Result trailing_blank = read_text("a,b\n1,2\n\n\n");
  EXPECT_EQ(trailing_blank.rows, (std::vector<Row>{{"1", "2"}}));
}

TEST(CsvReader, ByteOrderMarkIsDropped) {
  TempDir dir;
  write_file(dir.file("bom.csv"), "\xEF\xBB\xBFid,v\n1,2\n");
  write_file(dir.file("plain.csv"), "id,v\n3,4\n");
  CsvReader reader({dir.file("bom.csv"), dir.file("plain.csv")}, {}, nullptr);
  EXPECT_EQ(reader.column_names(), (Row{"id", "v"}));
  Result r = read_all({dir.file("bom.csv"), dir.file("plain.csv")}, {});
  EXPECT_EQ(r.rows, (std::vector<Row>{{"1", "2"}, {"3", "4"}}));
}

TEST(CsvReader, NaValues) {
  Result r = read_text("a,b,c,d,e,f,g,h\nNA,,N/A,\"NA\",na,NULL,nan,x\n1,NaN,null,\" \",None,-,0,\"\"\n");
  ASSERT_EQ(r.na.size(), 2u);
  EXPECT_EQ(r.na[0], (std::vector<bool>{true, true, true, true, false, true, true, false}));
  EXPECT_EQ(r.na[1], (std::vector<bool>{false, true, true, false, false, false, false, true}));
  CsvOptions custom;
  custom.na_values = {"-", "None", "a-very-long-missing-value-marker-that-is-longer-than-sixty-three-bytes!"};
  Result c = read_text("a,b,c,d\n-,None,,a-very-long-missing-value-marker-that-is-longer-than-sixty-three-bytes!\n",
                       custom);
  EXPECT_EQ(c.na[0], (std::vector<bool>{true, true, false, true}));
}

TEST(CsvReader, CustomDelimiters) {
  CsvOptions tab;
  tab.delimiter = '\t';
  Result t = read_text("a\tb\n1,5\t\"x\ty\"\n", tab);
  EXPECT_EQ(t.rows, (std::vector<Row>{{"1,5", "x\ty"}}));
  CsvOptions semi;
  semi.delimiter = ';';
  semi.quote = '\'';
  Result s = read_text("a;b\n'1;2';'it''s'\n\"q\";3\n", semi);
  EXPECT_EQ(s.rows, (std::vector<Row>{{"1;2", "it's"}, {"\"q\"", "3"}}));
}

TEST(CsvReader, NoHeaderUsesColumnNames) {
  CsvOptions o;
  o.header = false;
  o.column_names = {"p", "q"};
  TempDir dir;
  write_file(dir.file("d.csv"), "1,2\n3,4\n");
  CsvReader reader({dir.file("d.csv")}, o, nullptr);
  EXPECT_EQ(reader.column_names(), (Row{"p", "q"}));
  Result r = read_all({dir.file("d.csv")}, o);
  EXPECT_EQ(r.rows, (std::vector<Row>{{"1", "2"}, {"3", "4"}}));
  EXPECT_EQ(r.lines, (std::vector<int64_t>{1, 2}));

  // Without a header the first record is data: a malformed one is a bad row like any other.
  auto budget = std::make_shared<ErrorBudget>(1);
  write_file(dir.file("bad_first.csv"), "\"x\"y,2\n5,6\n");
  Result bad_first = read_all({dir.file("bad_first.csv")}, o, budget);
  EXPECT_EQ(bad_first.rows, (std::vector<Row>{{"5", "6"}}));
  EXPECT_EQ(budget->count(), 1);

  CsvOptions missing;
  missing.header = false;
  EXPECT_NE(error_of([&] { CsvReader({dir.file("d.csv")}, missing, nullptr); }).find("column_names"),
            std::string::npos);

  CsvOptions rename;
  rename.column_names = {"first", "second"};
  CsvReader renamed({dir.file("d.csv")}, rename, nullptr);  // the header "1,2" is replaced
  EXPECT_EQ(renamed.column_names(), (Row{"first", "second"}));
  rename.column_names = {"only"};
  EXPECT_NE(error_of([&] { CsvReader({dir.file("d.csv")}, rename, nullptr); }).find("csv.column_names"),
            std::string::npos);
}

TEST(CsvReader, FileErrorsNameTheFile) {
  TempDir dir;
  write_file(dir.file("a.csv"), "x,y\n1,2\n");
  write_file(dir.file("b.csv"), "x,z\n1,2\n");
  write_file(dir.file("c.csv"), "x,y,w\n1,2,3\n");
  write_file(dir.file("empty.csv"), "");
  write_file(dir.file("blank.csv"), "\n\r\n\n");
  write_file(dir.file("dup.csv"), "x,y,x\n");
  std::string e = error_of([&] { CsvReader({dir.file("a.csv"), dir.file("b.csv")}, {}, nullptr); });
  EXPECT_NE(e.find(dir.file("b.csv")), std::string::npos) << e;
  EXPECT_NE(e.find("column 2 is 'z'"), std::string::npos) << e;
  e = error_of([&] { CsvReader({dir.file("a.csv"), dir.file("c.csv")}, {}, nullptr); });
  EXPECT_NE(e.find(dir.file("c.csv")), std::string::npos) << e;
  e = error_of([&] { CsvReader({dir.file("a.csv"), dir.file("missing.csv")}, {}, nullptr); });
  EXPECT_NE(e.find(dir.file("missing.csv")), std::string::npos) << e;
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
  for (const char* name : {"empty.csv", "blank.csv"}) {
    e = error_of([&] { CsvReader({dir.file("a.csv"), dir.file(name)}, {}, nullptr); });
    EXPECT_NE(e.find(dir.file(name) + " is empty"), std::string::npos) << e;
  }
  e = error_of([&] { CsvReader({dir.file("dup.csv")}, {}, nullptr); });
  EXPECT_NE(e.find("'x' twice"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { CsvReader({}, {}, nullptr); }).find("no CSV input"), std::string::npos);
  CsvOptions bad;
  bad.delimiter = '"';
  EXPECT_NE(error_of([&] { CsvReader({dir.file("a.csv")}, bad, nullptr); }).find("must differ"), std::string::npos);
}

TEST(CsvReader, HeaderOnlyFileHasNoRows) {
  Result r = read_text("a,b\n");
  EXPECT_TRUE(r.rows.empty());
  EXPECT_TRUE(r.chunks.empty());
  EXPECT_TRUE(read_text("a,b").rows.empty());
}

TEST(CsvReader, ShardsInOrderWithPerFileLines) {
  TempDir dir;
  write_file(dir.file("s0.csv"), "k,v\n0,a\n1,b\n");
  write_file(dir.file("s1.csv"), "k,v\n\n2,c\n");
  Result r = read_all({dir.file("s0.csv"), dir.file("s1.csv")}, {});
  EXPECT_EQ(r.rows, (std::vector<Row>{{"0", "a"}, {"1", "b"}, {"2", "c"}}));
  EXPECT_EQ(r.lines, (std::vector<int64_t>{2, 3, 3}));
  EXPECT_EQ(r.files[2], dir.file("s1.csv"));
  EXPECT_EQ(r.stats.files, 2);
}

std::string generated_csv(int rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string text = "id,value,label,note\n";
  for (int i = 0; i < rows; ++i) {
    text += std::to_string(i) + "," + std::to_string(rng() % 100000 / 100.0) + ",";
    switch (rng() % 5) {
      case 0:
        text += "\"quoted, with comma\"";
        break;
      case 1:
        text += "\"multi\nline \"\"q\"\"\"";
        break;
      case 2:
        text += "NA";
        break;
      case 3:
        text += "";
        break;
      default:
        text += "plain" + std::to_string(rng() % 7);
    }
    text += rng() % 3 ? ",caf\xC3\xA9\n" : ",x\r\n";
    if (rng() % 11 == 0) text += "\n";
  }
  return text;
}

TEST(CsvReader, GzipEqualsPlain) {
  TempDir dir;
  const std::string text = generated_csv(3000, 7);
  write_file(dir.file("d.csv"), text);
  write_gz(dir.file("d.csv.gz"), text);
  for (size_t chunk : {size_t{100}, size_t{4} << 20}) {
    CsvOptions o;
    o.chunk_bytes = chunk;
    Result plain = read_all({dir.file("d.csv")}, o);
    Result gz = read_all({dir.file("d.csv.gz")}, o);
    EXPECT_EQ(plain.rows.size(), 3000u);
    EXPECT_EQ(plain.rows, gz.rows);
    EXPECT_EQ(plain.lines, gz.lines);
    EXPECT_EQ(plain.chunks, gz.chunks);
    EXPECT_EQ(gz.stats.bytes, static_cast<int64_t>(text.size()));
  }
}

TEST(CsvReader, TruncatedGzipIsAnError) {
  TempDir dir;
  write_gz(dir.file("full.csv.gz"), generated_csv(5000, 3));
  std::ifstream in(dir.file("full.csv.gz"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_file(dir.file("cut.csv.gz"), bytes.substr(0, bytes.size() / 2));
  CsvReader reader({dir.file("cut.csv.gz")}, {}, std::make_shared<ErrorBudget>(-1));
  std::string e = error_of([&] { reader.for_each_chunk([](const CsvChunk&) {}); });
  EXPECT_NE(e.find(dir.file("cut.csv.gz")), std::string::npos) << e;
}

TEST(CsvReader, ThreadsAndTinyChunksGiveIdenticalRows) {
  TempDir dir;
  write_file(dir.file("a.csv"), generated_csv(2000, 11));
  write_file(dir.file("b.csv"), generated_csv(1500, 12));
  const std::vector<std::string> files = {dir.file("a.csv"), dir.file("b.csv")};
  CsvOptions big;
  const Result reference = read_all(files, big);
  ASSERT_EQ(reference.rows.size(), 3500u);
  for (size_t chunk : {size_t{1}, size_t{64}, size_t{1000}}) {
    std::vector<std::pair<int64_t, int64_t>> chunks;
    for (int threads : {1, 2, 3}) {
      CsvOptions o;
      o.chunk_bytes = chunk;
      o.threads = threads;
      Result r = read_all(files, o);
      EXPECT_EQ(r.rows, reference.rows) << "chunk " << chunk << " threads " << threads;
      EXPECT_EQ(r.lines, reference.lines);
      EXPECT_EQ(r.files, reference.files);
      EXPECT_GT(r.chunks.size(), 10u);
      if (threads == 1) chunks = r.chunks;
      EXPECT_EQ(r.chunks, chunks) << "chunk boundaries depend on the thread count";
    }
  }
}

TEST(CsvReader, RecordLongerThanTheChunkGrowsIt) {
  const std::string long_field(5000, 'z');
  CsvOptions o;
  o.chunk_bytes = 64;
  Result r = read_text("a,b\n1,\"" + long_field + "\n" + long_field + "\"\n2,x\n", o);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0][1], long_field + "\n" + long_field);
  EXPECT_EQ(r.lines, (std::vector<int64_t>{2, 4}));
}

TEST(CsvReader, LargeFileStreamsWithBoundedChunks) {
  TempDir dir;
  std::string text = "a,b,c\n";
  const int rows = 200000;
  for (int i = 0; i < rows; ++i) text += std::to_string(i) + ",some text," + std::to_string(i % 13) + "\n";
  write_file(dir.file("big.csv"), text);
  for (int threads : {1, 2}) {
    CsvOptions o;
    o.chunk_bytes = 16 << 10;  // ~250 chunks
    o.threads = threads;
    CsvReader reader({dir.file("big.csv")}, o, nullptr);
    std::atomic<int64_t> peak{0}, seen{0}, chunks{0};
    std::atomic<int64_t> sum{0};
    reader.for_each_chunk([&](const CsvChunk& chunk) {
      // A slow consumer: the reader must wait rather than run ahead.
      if (chunk.index() % 25 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      int64_t live = csv_detail::live_chunks();
      int64_t old = peak.load();
      while (live > old && !peak.compare_exchange_weak(old, live)) {
      }
      seen += chunk.rows();
      ++chunks;
      for (int64_t r = 0; r < chunk.rows(); ++r) sum += std::stoll(std::string(chunk.field(r, 0)));
    });
    EXPECT_EQ(seen.load(), rows);
    EXPECT_EQ(sum.load(), int64_t{rows} * (rows - 1) / 2);
    EXPECT_GT(chunks.load(), 100);
    EXPECT_LE(peak.load(), 2 * threads + 1) << "threads " << threads;
    EXPECT_EQ(csv_detail::live_chunks(), 0);
    EXPECT_EQ(reader.stats().rows, rows);
    EXPECT_EQ(reader.stats().bytes, static_cast<int64_t>(text.size()));
  }
}

TEST(CsvReader, ExceptionsFromTheCallbackPropagate) {
  TempDir dir;
  write_file(dir.file("d.csv"), generated_csv(3000, 5));
  for (int threads : {1, 2, 4}) {
    CsvOptions o;
    o.chunk_bytes = 256;
    o.threads = threads;
    CsvReader reader({dir.file("d.csv")}, o, nullptr);
    std::atomic<int> calls{0};
    EXPECT_THROW(reader.for_each_chunk([&](const CsvChunk& chunk) {
      ++calls;
      if (chunk.index() == 5) throw std::runtime_error("consumer failed");
    }),
                 std::runtime_error);
    // One worker stops at the failing chunk. With more, how many chunks others finish before
    // they see the failure depends on scheduling, so only propagation is checked for them.
    if (threads == 1) {
      EXPECT_EQ(calls.load(), 6);
    }
    EXPECT_EQ(csv_detail::live_chunks(), 0);
    // The reader is usable again afterwards.
    std::atomic<int64_t> rows{0};
    reader.for_each_chunk([&](const CsvChunk& chunk) { rows += chunk.rows(); });
    EXPECT_EQ(rows.load(), 3000);
  }
}

// Each kind of malformed row: counted, skipped, reported at file:line:column.
TEST(CsvReader, BadRowsAreSkippedAndReported) {
  TempDir dir;
  const std::string path = dir.file("bad.csv");
  write_file(path,
             "a,b,c\n"
             "1,2,3\n"
             "1,2\n"                        // line 3: too few fields
             "1,2,3,4\n"                    // line 4: too many
             "1,\"x\"y,3\n"                 // line 5: character after a closing quote
             "4,5,6\n"                      // line 6: good
             "\"multi\nline\",\"ok\"z,9\n"  // line 7-8: after a closing quote, on line 8
             "7,caf\xC3,9\n"                // line 9: truncated UTF-8 sequence in field 2
             "\"\xED\xA0\x80\",8,9\n"       // line 10: a surrogate, quoted, field 1
             "\"q\n\xFF\",8,9\n"            // line 11-12: invalid byte on line 12, field 1
             "x,y,z\n"                      // line 13: good
             "8,\"never closed,9\n"         // line 14: unterminated, runs to the end
             "10,11,12\n");
  for (int threads : {1, 2}) {
    for (size_t chunk : {size_t{1}, size_t{4} << 20}) {
      CsvOptions o;
      o.threads = threads;
      o.chunk_bytes = chunk;
      auto budget = std::make_shared<ErrorBudget>(100);
      Result r = read_all({path}, o, budget);
      EXPECT_EQ(r.rows, (std::vector<Row>{{"1", "2", "3"}, {"4", "5", "6"}, {"x", "y", "z"}}));
      EXPECT_EQ(r.lines, (std::vector<int64_t>{2, 6, 13}));
      EXPECT_EQ(r.stats.bad_rows, 8);
      EXPECT_EQ(budget->count(), 8);
      std::vector<BadRow> bad = budget->first(100);
      ASSERT_EQ(bad.size(), 8u);
      std::sort(bad.begin(), bad.end(), [](const BadRow& x, const BadRow& y) { return x.line < y.line; });
      std::vector<std::string> got;
      for (const BadRow& b : bad) {
        EXPECT_EQ(b.file, path);
        got.push_back(format_bad_row({"", b.line, b.column, b.reason}));
      }
      EXPECT_EQ(got, (std::vector<std::string>{
                         ":3: expected 3 fields, found 2",
                         ":4: expected 3 fields, found 4",
                         ":5:2: unexpected character 'y' after a closing quote",
                         ":8:2: unexpected character 'z' after a closing quote",
                         ":9:2: invalid UTF-8",
                         ":10:1: invalid UTF-8",
                         ":12:1: invalid UTF-8",
                         ":14:2: unterminated quoted field (no closing quote before the end of the file)",
                     }))
          << "threads " << threads << " chunk " << chunk;
    }
  }
}

TEST(CsvReader, BudgetExceededThrowsWithLocation) {
  TempDir dir;
  const std::string path = dir.file("bad.csv");
  write_file(path, "a,b\n1,2\n3\n4,5\n\"x\"!,6\n7,8\n");
  std::string e = error_of([&] { read_all({path}, {}, std::make_shared<ErrorBudget>(0)); });
  EXPECT_EQ(e, path + ":3: expected 2 fields, found 1 (csv.max_bad_rows is 0; set it to skip malformed rows, -1 for no limit)");
  e = error_of([&] { read_all({path}, {}, std::make_shared<ErrorBudget>(1)); });
  EXPECT_NE(e.find(path + ":5:1: unexpected character '!' after a closing quote"), std::string::npos) << e;
  EXPECT_NE(e.find("more than 1 malformed rows"), std::string::npos) << e;
  Result ok = read_all({path}, {}, std::make_shared<ErrorBudget>(2));
  EXPECT_EQ(ok.rows.size(), 3u);
}

TEST(CsvReader, Utf8Validation) {
  const std::string valid = "a,b\n\xC3\xA9,\xE2\x82\xAC\n\xF0\x9F\x98\x80,\xF4\x8F\xBF\xBF\n";
  EXPECT_EQ(read_text(valid).rows.size(), 2u);
  for (const std::string& bad :
       {std::string("\xC0\xAF"), std::string("\xE0\x80\xAF"), std::string("\xF4\x90\x80\x80"), std::string("\x80"),
        std::string("\xC3"), std::string("\xF8\x88\x80\x80\x80")}) {
    auto budget = std::make_shared<ErrorBudget>(-1);
    Result r = read_text("a,b\nok," + bad + "\n1,2\n", {}, budget);
    EXPECT_EQ(r.rows, (std::vector<Row>{{"1", "2"}}));
    ASSERT_EQ(budget->count(), 1);
    EXPECT_EQ(budget->first()[0].column, 2);
    EXPECT_EQ(budget->first()[0].reason, "invalid UTF-8");
    CsvOptions off;
    off.validate_utf8 = false;
    EXPECT_EQ(read_text("a,b\nok," + bad + "\n1,2\n", off).rows.size(), 2u);
  }
  // Invalid bytes in the header are an error at construction.
  const std::string e = error_of([] { read_text("a,\xFF\n1,2\n"); });
  EXPECT_NE(e.find(":1:2: invalid UTF-8 (in the header)"), std::string::npos) << e;
}

// Random text over the grammar's alphabet, malformed rows included: the rows and the bad rows
// must not depend on the chunk size or thread count, since chunks are cut where the parser
// would end a record.
TEST(CsvReader, ChunkingNeverChangesTheResultOnRandomText) {
  TempDir dir;
  std::mt19937 rng(1234);
  const char alphabet[] = {'a', 'b', ',', ',', '"', '"', '\n', '\n', '\r', 'x'};
  for (int trial = 0; trial < 40; ++trial) {
    std::string text = "h1,h2\n";
    const int length = 50 + static_cast<int>(rng() % 400);
    for (int i = 0; i < length; ++i) text += alphabet[rng() % sizeof alphabet];
    const std::string path = dir.file("r" + std::to_string(trial) + ".csv");
    write_file(path, text);
    auto run = [&](size_t chunk, int threads, std::vector<std::string>* bad) {
      CsvOptions o;
      o.chunk_bytes = chunk;
      o.threads = threads;
      auto budget = std::make_shared<ErrorBudget>(-1);
      Result r = read_all({path}, o, budget);
      for (const BadRow& b : budget->first(1000)) bad->push_back(format_bad_row(b));
      std::sort(bad->begin(), bad->end());
      return r;
    };
    std::vector<std::string> bad_ref;
    Result ref = run(1 << 20, 1, &bad_ref);
    for (size_t chunk : {size_t{1}, size_t{3}, size_t{16}}) {
      for (int threads : {1, 2}) {
        std::vector<std::string> bad;
        Result r = run(chunk, threads, &bad);
        EXPECT_EQ(r.rows, ref.rows) << "trial " << trial << " chunk " << chunk;
        EXPECT_EQ(r.lines, ref.lines) << "trial " << trial;
        EXPECT_EQ(bad, bad_ref) << "trial " << trial << " chunk " << chunk;
      }
    }
  }
}

// The grammar of io/csv_parser.h written as plainly as possible, byte by byte, to check the
// parser's vectorized fast path and its fallback against: rows, their lines and the bad records'
// lines and columns.
struct Reference {
  std::vector<Row> rows;
  std::vector<int64_t> lines;
  std::vector<std::string> bad;  // "line:column"
};

Reference reference_parse(const std::string& text, size_t columns, int64_t line) {
  Reference out;
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (text[i] == '\n') {
      ++i, ++line;
      continue;
    }
    if (text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') {
      i += 2, ++line;
      continue;
    }
    const int64_t row_line = line;
    Row row;
    std::string bad;
    for (;;) {
      if (text[i] != '"') {
        size_t j = i;
        while (j < n && text[j] != ',' && text[j] != '\n') ++j;
        std::string field = text.substr(i, j - i);
        if (j < n && text[j] == ',') {
          row.push_back(field);
          i = j + 1;
          continue;
        }
        if (!field.empty() && field.back() == '\r') field.pop_back();
        row.push_back(field);
        i = j + 1, ++line;
        break;
      }
      std::string field;
      size_t j = i + 1;
      bool closed = false;
      while (j < n) {
        if (text[j] == '"') {
          if (j + 1 < n && text[j + 1] == '"') {
            field += '"', j += 2;
            continue;
          }
          closed = true;
          break;
        }
        if (text[j] == '\n') ++line;
        field += text[j++];
      }
      if (!closed) {
        if (bad.empty()) bad = std::to_string(line) + ":" + std::to_string(row.size() + 1) + " unterminated";
        i = n;
        break;
      }
      row.push_back(field);
      const size_t k = j + 1;
      if (k < n && text[k] == ',') {
        i = k + 1;
        continue;
      }
      if (k >= n || text[k] == '\n' || (text[k] == '\r' && (k + 1 >= n || text[k + 1] == '\n'))) {
        i = k >= n ? n : k + (text[k] == '\n' ? 1 : 2), ++line;
        break;
      }
      bad = std::to_string(line) + ":" + std::to_string(row.size()) + " after quote";
      size_t stop = csv_detail::first_record_end(text.data(), n, k, {});
      if (stop == csv_detail::kNoRecordEnd) stop = n;
      line += std::count(text.begin() + static_cast<std::ptrdiff_t>(k), text.begin() + static_cast<std::ptrdiff_t>(stop), '\n');
      i = stop;
      break;
    }
    if (bad.empty() && row.size() != columns) bad = std::to_string(row_line) + ":0 count";
    if (!bad.empty()) {
      out.bad.push_back(bad.substr(0, bad.find(' ')));
      continue;
    }
    out.rows.push_back(row);
    out.lines.push_back(row_line);
  }
  return out;
}

// Random records, most of them plain (the parser's fast path) and some with quotes, CRs, blank
// lines and wrong field counts (its fallback), in runs that switch between the two.
TEST(CsvReader, MatchesTheGrammarOnRandomRecords) {
  TempDir dir;
  std::mt19937 rng(77);
  for (int trial = 0; trial < 60; ++trial) {
    std::string body;
    const int records = 1 + static_cast<int>(rng() % 200);
    const int quirky = static_cast<int>(rng() % 4);  // 0: none; higher: more
    for (int r = 0; r < records; ++r) {
      const int fields = rng() % 10 < static_cast<unsigned>(quirky) ? 1 + static_cast<int>(rng() % 5) : 3;
      for (int f = 0; f < fields; ++f) {
        if (f) body += ',';
        const int length = static_cast<int>(rng() % 70);  // fields across 64-byte scan blocks too
        for (int k = 0; k < length; ++k) body += static_cast<char>('a' + rng() % 26);
        if (rng() % 12 < static_cast<unsigned>(quirky)) {
          const char* odd[] = {"\"", "\"q,\"\"x\"", "\"a\nb\"", "\r", "\"z\"y", "\n", "\r\n"};
          body += odd[rng() % 7];
        }
      }
      body += rng() % 8 < static_cast<unsigned>(quirky) ? "\r\n" : "\n";
      if (rng() % 16 < static_cast<unsigned>(quirky)) body += "\n";
    }
    const std::string path = dir.file("g" + std::to_string(trial) + ".csv");
    write_file(path, "h1,h2,h3\n" + body);
    const Reference want = reference_parse(body, 3, 2);
    for (size_t chunk : {size_t{1} << 20, size_t{97}}) {
      CsvOptions o;
      o.chunk_bytes = chunk;
      auto budget = std::make_shared<ErrorBudget>(-1);
      Result r = read_all({path}, o, budget);
      ASSERT_EQ(r.rows, want.rows) << "trial " << trial;
      ASSERT_EQ(r.lines, want.lines) << "trial " << trial;
      // One thread: the budget sees bad rows in text order and keeps the first 100 of them.
      ASSERT_EQ(budget->count(), static_cast<int64_t>(want.bad.size())) << "trial " << trial;
      std::vector<std::string> bad;
      for (const BadRow& b : budget->first(100))
        bad.push_back(std::to_string(b.line) + ":" + std::to_string(b.column));
      ASSERT_EQ(bad, std::vector<std::string>(want.bad.begin(), want.bad.begin() + static_cast<std::ptrdiff_t>(bad.size())))
          << "trial " << trial;
    }
  }
}

// Selected columns: the same rows and bad rows as a full read, only the selected fields kept.
TEST(CsvReader, SelectedColumnsKeepTheSameRows) {
  TempDir dir;
  std::mt19937 rng(5);
  const char alphabet[] = {'a', 'b', ',', ',', ',', '"', '\n', '\n', '\r', 'x', 'y', 'z'};
  for (int trial = 0; trial < 40; ++trial) {
    std::string text = "h1,h2,h3,h4\n";
    const int length = 50 + static_cast<int>(rng() % 2000);
    for (int i = 0; i < length; ++i) text += alphabet[rng() % sizeof alphabet];
    const std::string path = dir.file("s" + std::to_string(trial) + ".csv");
    write_file(path, text);
    auto bad_of = [](const ErrorBudget& b) {
      std::vector<std::string> out;
      for (const BadRow& r : b.first(100000)) out.push_back(format_bad_row(r));
      std::sort(out.begin(), out.end());
      return out;
    };
    auto full_budget = std::make_shared<ErrorBudget>(-1);
    const Result full = read_all({path}, {}, full_budget);
    for (const std::vector<int>& selected : std::vector<std::vector<int>>{{1}, {3, 0}, {2, 2}}) {
      auto budget = std::make_shared<ErrorBudget>(-1);
      const Result part = read_all({path}, {}, budget, selected);
      ASSERT_EQ(part.rows.size(), full.rows.size()) << "trial " << trial;
      for (size_t r = 0; r < full.rows.size(); ++r) {
        Row want;
        for (int c = 0; c < 4; ++c)
          if (std::find(selected.begin(), selected.end(), c) != selected.end()) want.push_back(full.rows[r][c]);
        ASSERT_EQ(part.rows[r], want) << "trial " << trial << " row " << r;
      }
      EXPECT_EQ(part.lines, full.lines);
      EXPECT_EQ(bad_of(*budget), bad_of(*full_budget));
    }
  }
  // A column that was not selected cannot be read.
  write_file(dir.file("t.csv"), "a,b\n1,2\n");
  CsvReader reader({dir.file("t.csv")}, {}, nullptr);
  reader.select_columns({1});
  std::string error;
  reader.for_each_chunk([&](const CsvChunk& chunk) {
    EXPECT_EQ(chunk.field(0, 1), "2");
    try {
      (void)chunk.field(0, 0);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  EXPECT_NE(error.find("not selected"), std::string::npos) << error;
}

}  // namespace
}  // namespace kiln::io
