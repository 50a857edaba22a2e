// Streamed example shards (models/shard_stream.h): every example once per epoch, the window bound,
// resume by position, per-rank blocks with equal steps, corrupt blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "io/error_budget.h"
#include "io/example_shard.h"
#include "models/shard_stream.h"
#include "tests/io/temp_dir.h"

namespace kiln::models {
namespace {

using io::testing::TempDir;

io::ExampleShardSchema schema() {
  io::ExampleShardSchema s;
  s.dense_width = 2;
  s.ids_features = {"cat"};
  s.label_dtype = DType::f32;
  s.state_fingerprint = "00000000feedbeef";
  return s;
}

// A shard of blocks of the given sizes; example k (counting from `first`) has dense (k, -k), the
// ids k % 7 repeated k % 3 times, and label k.
int64_t write_shard(const std::string& path, int64_t first, const std::vector<int64_t>& block_rows) {
  io::ExampleShardWriter w(path, schema());
  int64_t k = first;
  for (int64_t rows : block_rows) {
    io::ExampleBlock b;
    b.rows = rows;
    b.dense = Tensor::empty(Shape{rows, 2}, DType::f32);
    b.label = Tensor::empty(Shape{rows}, DType::f32);
    std::vector<int64_t> ids, offsets{0};
    for (int64_t r = 0; r < rows; ++r, ++k) {
      b.dense.data<float>()[2 * r] = static_cast<float>(k);
      b.dense.data<float>()[2 * r + 1] = static_cast<float>(-k);
      b.label.data<float>()[r] = static_cast<float>(k);
      for (int64_t i = 0; i < k % 3; ++i) ids.push_back(k % 7);
      offsets.push_back(static_cast<int64_t>(ids.size()));
    }
    Tensor t_ids = Tensor::empty(Shape{std::max<int64_t>(1, static_cast<int64_t>(ids.size()))}, DType::i64);
    std::copy(ids.begin(), ids.end(), t_ids.data<int64_t>());
    Tensor t_off = Tensor::empty(Shape{rows + 1}, DType::i64);
    std::copy(offsets.begin(), offsets.end(), t_off.data<int64_t>());
    b.ids.push_back(t_ids);
    b.offsets.push_back(t_off);
    w.append(b);
  }
  w.commit();
  return k;
}

std::shared_ptr<const ShardTable> table(const std::vector<std::string>& files, int rank = 0, int ranks = 1,
                                        int64_t max_bad_rows = 0) {
  return std::make_shared<const ShardTable>(schema(), files, rank, ranks,
                                            std::make_shared<io::ErrorBudget>(max_bad_rows));
}

// The example ids of a batch, checking every column agrees with the id.
std::vector<int64_t> examples_of(const io::Batch& b) {
  std::vector<int64_t> ks;
  const float* d = b.tensors[0].data<float>();
  const int64_t* ids = b.tensors[1].data<int64_t>();
  const int64_t* off = b.tensors[2].data<int64_t>();
  for (int64_t r = 0; r < b.size; ++r) {
    const int64_t k = static_cast<int64_t>(d[2 * r]);
    EXPECT_EQ(d[2 * r + 1], -static_cast<float>(k));
    EXPECT_EQ(b.tensors[3].data<float>()[r], static_cast<float>(k));
    EXPECT_EQ(off[r + 1] - off[r], k % 3) << "example " << k;
    for (int64_t i = off[r]; i < off[r + 1]; ++i) EXPECT_EQ(ids[i], k % 7);
    ks.push_back(k);
  }
  return ks;
}

std::vector<int64_t> epoch_examples(ShardBatches& s, int64_t epoch) {
  std::vector<int64_t> all;
  for (int64_t i = 0; i < s.batches_per_epoch(); ++i) {
    const std::vector<int64_t> ks = examples_of(s.make_batch(epoch, i));
    all.insert(all.end(), ks.begin(), ks.end());
  }
  return all;
}

struct Shards {
  TempDir dir;
  std::vector<std::string> files;
  int64_t rows = 0;
  // Three shards of uneven sizes: 10 blocks of 50, 3 of 50, 7 of 50 (1000 examples).
  Shards() {
    for (int64_t blocks : {10, 3, 7}) {
      files.push_back(dir.file("s" + std::to_string(files.size()) + ".kex"));
      rows = write_shard(files.back(), rows, std::vector<int64_t>(static_cast<size_t>(blocks), 50));
    }
  }
};

TEST(ShardStream, AnEpochVisitsEveryExampleOnceInANewOrder) {
  Shards s;
  StreamOptions o;
  o.batch_size = 32;
  o.shuffle_buffer = 100;
  o.seed = 5;
  ShardBatches stream(table(s.files), o);
  EXPECT_EQ(stream.examples_per_epoch(), 1000);
  EXPECT_EQ(stream.window_examples(), 128);  // rounded up to whole batches
  EXPECT_EQ(stream.batches_per_epoch(), 32);
  const std::vector<int64_t> e0 = epoch_examples(stream, 0), e1 = epoch_examples(stream, 1);
  for (const auto* e : {&e0, &e1}) {
    std::vector<int64_t> sorted = *e;
    std::sort(sorted.begin(), sorted.end());
    ASSERT_EQ(sorted.size(), 1000u);
    for (int64_t k = 0; k < 1000; ++k) ASSERT_EQ(sorted[static_cast<size_t>(k)], k);
  }
  EXPECT_NE(e0, e1);
  EXPECT_FALSE(std::is_sorted(e0.begin(), e0.end()));
  // The same seed gives the same order; another seed another.
  ShardBatches again(table(s.files), o);
  EXPECT_EQ(epoch_examples(again, 0), e0);
  o.seed = 6;
  ShardBatches other(table(s.files), o);
  EXPECT_NE(epoch_examples(other, 0), e0);
}

// A window's examples come from the few blocks it covers: memory holds a window, not the data.
TEST(ShardStream, AWindowDrawsFromItsOwnBlocksOnly) {
  Shards s;
  StreamOptions o;
  o.batch_size = 25;
  o.shuffle_buffer = 100;  // two blocks of 50
  ShardBatches stream(table(s.files), o);
  for (int64_t w = 0; w < 10; ++w) {
    std::set<int64_t> blocks;
    for (int64_t i = 4 * w; i < 4 * w + 4; ++i)
      for (int64_t k : examples_of(stream.make_batch(3, i))) blocks.insert(k / 50);
    EXPECT_EQ(blocks.size(), 2u) << "window " << w;
  }
}

// Batches are a pure function of (epoch, index): a pipeline positioned at a batch continues as
// the uninterrupted one does, prefetching included.
TEST(ShardStream, SeekingResumesAtTheSameExample) {
  Shards s;
  StreamOptions o;
  o.batch_size = 30;
  o.shuffle_buffer = 90;
  io::InputPipeline whole(std::make_shared<ShardBatches>(table(s.files), o), 2);
  std::vector<std::vector<int64_t>> expected;
  for (int i = 0; i < 60; ++i) expected.push_back(examples_of(whole.next()));  // into epoch 1
  io::InputPipeline resumed(std::make_shared<ShardBatches>(table(s.files), o), 2);
  resumed.seek(0, 23);  // mid-window, mid-epoch
  for (int i = 23; i < 60; ++i) EXPECT_EQ(examples_of(resumed.next()), expected[static_cast<size_t>(i)]) << i;
}

// Two ranks own disjoint runs of blocks, open only their files, and run the same number of
// batches per epoch; evaluation covers every example once.
TEST(ShardStream, RanksReadTheirOwnBlocksAndRunEqualSteps) {
  Shards s;
  StreamOptions o;
  o.batch_size = 64;
  o.shuffle_buffer = 128;
  auto t0 = table(s.files, 0, 2), t1 = table(s.files, 1, 2);
  EXPECT_EQ(t0->rows() + t1->rows(), 1000);
  EXPECT_EQ(t0->rows(), 500);
  EXPECT_EQ(t0->files_read(), 1u);  // the first shard alone holds its 500 rows
  EXPECT_EQ(t1->files_read(), 2u);
  ShardBatches r0(t0, o), r1(t1, o);
  EXPECT_EQ(r0.batches_per_epoch(), r1.batches_per_epoch());
  const std::vector<int64_t> a = epoch_examples(r0, 2), b = epoch_examples(r1, 2);
  EXPECT_EQ(a.size(), 500u);
  EXPECT_EQ(b.size(), 500u);
  std::set<int64_t> both(a.begin(), a.end());
  both.insert(b.begin(), b.end());
  EXPECT_EQ(both.size(), 1000u);
  for (int64_t k : a) EXPECT_LT(k, 500);
  io::Batch last = r1.make_batch(2, r1.batches_per_epoch() - 1);
  EXPECT_EQ(last.global_size, 2 * last.size);
  EXPECT_EQ(last.global_offset, last.size);

  // Three ranks get 333, 333 and 334 rows (blocks on the boundaries are shared); training takes
  // 333 from each.
  ShardBatches u0(table(s.files, 0, 3), o), u1(table(s.files, 1, 3), o), u2(table(s.files, 2, 3), o);
  EXPECT_EQ(u0.examples_per_epoch(), 333);
  EXPECT_EQ(u0.batches_per_epoch(), u1.batches_per_epoch());
  EXPECT_EQ(u1.batches_per_epoch(), u2.batches_per_epoch());
  std::set<int64_t> seen;
  for (ShardBatches* u : {&u0, &u1, &u2})
    for (int64_t e = 0; e < 4; ++e)
      for (int64_t k : epoch_examples(*u, e)) seen.insert(k);
  EXPECT_GE(seen.size(), 999u) << "the row left out differs between epochs";
  o.equal_steps = false;
  o.shuffle = false;
  std::vector<int64_t> all;
  for (int r = 0; r < 3; ++r) {
    ShardBatches eval(table(s.files, r, 3), o);
    const std::vector<int64_t> part = epoch_examples(eval, 0);
    all.insert(all.end(), part.begin(), part.end());
  }
  ASSERT_EQ(all.size(), 1000u);
  for (int64_t k = 0; k < 1000; ++k) EXPECT_EQ(all[static_cast<size_t>(k)], k) << "in file order";
}

TEST(ShardStream, TooFewRowsForTheRanksIsAClearError) {
  TempDir dir;
  const std::string f = dir.file("one.kex");
  write_shard(f, 0, {1});
  StreamOptions o;
  try {
    ShardBatches stream(table({f}, 0, 2), o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 rows in 1 files, too few for 2 ranks"), std::string::npos) << e.what();
  }
}

// A corrupt block: an error naming the file and block; within the budget it is skipped (charged
// once however many epochs pass) and its window comes up short.
TEST(ShardStream, ACorruptBlockFailsOrIsSkippedWithinTheBudget) {
  TempDir dir;
  const std::string f = dir.file("c.kex");
  write_shard(f, 0, {50, 50, 50});
  const uint64_t at = io::ExampleShardReader(f).block_info(1).offset + 5;  // block 1's dense column
  {
    std::fstream file(f, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(at));
    file.put('\x7f');
  }
  StreamOptions o;
  o.batch_size = 50;
  o.shuffle = false;
  o.shuffle_buffer = 50;
  ShardBatches strict(table({f}), o);
  EXPECT_EQ(examples_of(strict.make_batch(0, 0)).size(), 50u);
  try {
    strict.make_batch(0, 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(f + ": block 1 (bytes"), std::string::npos) << e.what();
  }
  auto budget = std::make_shared<io::ErrorBudget>(50);
  ShardBatches lenient(std::make_shared<const ShardTable>(schema(), std::vector<std::string>{f}, 0, 1, budget), o);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    EXPECT_EQ(lenient.make_batch(epoch, 0).size, 50);
    EXPECT_EQ(lenient.make_batch(epoch, 1).size, 0);
    EXPECT_EQ(lenient.make_batch(epoch, 2).size, 50);
  }
  EXPECT_EQ(budget->count(), 50);
}

}  // namespace
}  // namespace kiln::models
