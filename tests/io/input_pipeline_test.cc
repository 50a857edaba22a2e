#include "io/input_pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <set>
#include <stdexcept>

#include "core/error.h"

namespace kiln::io {
namespace {

// An id column (i64 [n]) and a u8 "pixel" column [n, 2, 3] whose values derive from the id.
std::shared_ptr<ArraySource> make_source(int64_t n, bool to_float = false) {
  Tensor ids = Tensor::empty({n}, DType::i64);
  Tensor pixels = Tensor::empty({n, 2, 3}, DType::u8);
  for (int64_t i = 0; i < n; ++i) {
    ids.data<int64_t>()[i] = i;
    for (int k = 0; k < 6; ++k) pixels.data<uint8_t>()[i * 6 + k] = static_cast<uint8_t>((i + k) % 256);
  }
  return std::make_shared<ArraySource>(
      std::vector<ArraySource::Column>{{ids}, {pixels, to_float, to_float ? 1.0f / 255.0f : 1.0f}});
}

std::vector<int64_t> ids_of(const Batch& b) {
  const int64_t* p = b.tensors[0].data<int64_t>();
  return std::vector<int64_t>(p, p + b.size);
}

// The ids of `batches` consecutive batches, flattened.
std::vector<int64_t> take(InputPipeline& p, int64_t batches) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < batches; ++i) {
    std::vector<int64_t> ids = ids_of(p.next());
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

class Pipeline : public ::testing::TestWithParam<int> {
 protected:
  PipelineOptions options(int64_t batch_size, uint64_t seed = 7) const {
    PipelineOptions o;
    o.batch_size = batch_size;
    o.seed = seed;
    o.prefetch = GetParam();
    return o;
  }
};

TEST_P(Pipeline, EveryExampleOncePerEpochWithPartialLastBatch) {
  InputPipeline p(make_source(103), options(10));
  ASSERT_EQ(p.batches_per_epoch(), 11);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> seen;
    for (int64_t i = 0; i < 11; ++i) {
      Batch b = p.next();
      EXPECT_EQ(b.epoch, epoch);
      EXPECT_EQ(b.index, i);
      EXPECT_EQ(b.size, i < 10 ? 10 : 3);
      ASSERT_EQ(b.tensors.size(), 2u);
      EXPECT_EQ(b.tensors[0].shape(), Shape({b.size}));
      EXPECT_EQ(b.tensors[1].shape(), Shape({b.size, 2, 3}));
      EXPECT_EQ(b.tensors[1].dtype(), DType::u8);
      // The pixel rows travel with their ids.
      for (int64_t j = 0; j < b.size; ++j) {
        int64_t id = b.tensors[0].data<int64_t>()[j];
        EXPECT_EQ(b.tensors[1].data<uint8_t>()[j * 6 + 5], static_cast<uint8_t>((id + 5) % 256));
      }
      std::vector<int64_t> ids = ids_of(b);
      seen.insert(seen.end(), ids.begin(), ids.end());
    }
    std::vector<int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(103);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(sorted, all) << "epoch " << epoch;
    EXPECT_NE(seen, all) << "epoch " << epoch << " was not shuffled";
  }
}

TEST_P(Pipeline, DeterministicForASeedDifferentAcrossEpochsAndSeeds) {
  InputPipeline a(make_source(50), options(8, 1));
  InputPipeline b(make_source(50), options(8, 1));
  InputPipeline c(make_source(50), options(8, 2));
  const int64_t bpe = a.batches_per_epoch();
  std::vector<int64_t> a0 = take(a, bpe), a1 = take(a, bpe);
  std::vector<int64_t> b0 = take(b, bpe), b1 = take(b, bpe);
  std::vector<int64_t> c0 = take(c, bpe);
  EXPECT_EQ(a0, b0);
  EXPECT_EQ(a1, b1);
  EXPECT_NE(a0, a1);
  EXPECT_NE(a0, c0);
}

TEST_P(Pipeline, SeekReproducesUninterruptedStream) {
  auto source = make_source(37);
  InputPipeline reference(source, options(5));
  const int64_t bpe = reference.batches_per_epoch();  // 8
  std::vector<std::vector<int64_t>> stream;
  for (int64_t i = 0; i < 4 * bpe; ++i) stream.push_back(ids_of(reference.next()));

  for (int64_t start : {int64_t{0}, int64_t{3}, bpe - 1, bpe, 2 * bpe + 5}) {
    InputPipeline resumed(source, options(5));
    resumed.seek(start / bpe, start % bpe);
    for (int64_t i = start; i < 4 * bpe; ++i) {
      Batch b = resumed.next();
      ASSERT_EQ(b.epoch, i / bpe);
      ASSERT_EQ(b.index, i % bpe);
      ASSERT_EQ(ids_of(b), stream[i]) << "resumed at " << start << ", batch " << i;
    }
  }
  // Seeking an already-running pipeline (with batches prefetched) restarts it at the new place,
  // and a batch index past the epoch carries into the next epoch.
  InputPipeline p(source, options(5));
  p.next();
  p.next();
  p.seek(1, 2);
  EXPECT_EQ(ids_of(p.next()), stream[bpe + 2]);
  p.seek(0, bpe + 1);
  Batch b = p.next();
  EXPECT_EQ(b.epoch, 1);
  EXPECT_EQ(b.index, 1);
  EXPECT_EQ(ids_of(b), stream[bpe + 1]);
  EXPECT_THROW(p.seek(-1, 0), Error);
}

TEST_P(Pipeline, DropRemainder) {
  PipelineOptions o = options(10);
  o.drop_remainder = true;
  InputPipeline p(make_source(103), o);
  ASSERT_EQ(p.batches_per_epoch(), 10);
  std::set<int64_t> seen;
  for (int64_t i = 0; i < 10; ++i) {
    Batch b = p.next();
    EXPECT_EQ(b.size, 10);
    EXPECT_EQ(b.epoch, 0);
    for (int64_t id : ids_of(b)) seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
  Batch b = p.next();
  EXPECT_EQ(b.epoch, 1);
  EXPECT_EQ(b.index, 0);

  // Fewer examples than one batch: no batches at all, which next() reports instead of spinning.
  InputPipeline tiny(make_source(3), o);
  EXPECT_EQ(tiny.batches_per_epoch(), 0);
  EXPECT_THROW(tiny.next(), Error);
}

TEST_P(Pipeline, NoShuffleIsIdentityOrder) {
  PipelineOptions o = options(4);
  o.shuffle = false;
  InputPipeline p(make_source(10), o);
  EXPECT_EQ(take(p, 3), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(take(p, 1), (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST_P(Pipeline, ToFloatScales) {
  PipelineOptions o = options(6);
  o.shuffle = false;
  InputPipeline p(make_source(6, /*to_float=*/true), o);
  Batch b = p.next();
  ASSERT_EQ(b.tensors[1].dtype(), DType::f32);
  EXPECT_EQ(b.tensors[1].shape(), Shape({6, 2, 3}));
  EXPECT_FLOAT_EQ(b.tensors[1].data<float>()[4 * 6 + 2], 6.0f / 255.0f);
}

// Throws on one example; counts gathers so a retry can be observed.
class FailingSource : public ExampleSource {
 public:
  explicit FailingSource(int64_t bad) : bad_(bad) {}
  int64_t size() const override { return 20; }
  std::vector<std::pair<Shape, DType>> signature() const override { return {{Shape{}, DType::i64}}; }
  void gather(const int64_t* indices, int64_t count, std::vector<Tensor>& out) const override {
    for (int64_t i = 0; i < count; ++i) {
      if (indices[i] == bad_ && fail_) throw Error("cannot decode example " + std::to_string(bad_));
      out[0].data<int64_t>()[i] = indices[i];
    }
  }
  mutable std::atomic<bool> fail_{true};

 private:
  int64_t bad_;
};

TEST_P(Pipeline, GatherExceptionsPropagateAndTheBatchIsRetried) {
  auto source = std::make_shared<FailingSource>(13);
  PipelineOptions o = options(5);
  o.shuffle = false;
  InputPipeline p(source, o);
  EXPECT_EQ(ids_of(p.next()), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(ids_of(p.next()), (std::vector<int64_t>{5, 6, 7, 8, 9}));
  try {
    p.next();
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cannot decode example 13");
  }
  EXPECT_THROW(p.next(), Error);  // still failing: the same batch again
  source->fail_ = false;
  Batch b = p.next();
  EXPECT_EQ(b.index, 2);
  EXPECT_EQ(ids_of(b), (std::vector<int64_t>{10, 11, 12, 13, 14}));
  EXPECT_EQ(p.next().index, 3);
}

TEST_P(Pipeline, DestroyWhileProducing) {
  // The producer may be blocked on a full queue or mid-gather; destruction must not hang.
  for (int i = 0; i < 20; ++i) {
    InputPipeline p(make_source(1000), options(7));
    if (i % 2) p.next();
  }
}

TEST_P(Pipeline, ConsumerMayKeepBatches) {
  InputPipeline p(make_source(30), options(5));
  std::vector<Batch> kept;
  std::vector<std::vector<int64_t>> ids;
  for (int i = 0; i < 12; ++i) {
    kept.push_back(p.next());
    ids.push_back(ids_of(kept.back()));
  }
  for (int i = 0; i < 12; ++i) EXPECT_EQ(ids_of(kept[i]), ids[i]);
}

INSTANTIATE_TEST_SUITE_P(Prefetch, Pipeline, ::testing::Values(0, 1, 3),
                         [](const auto& info) { return "prefetch" + std::to_string(info.param); });

TEST(ArraySource, ValidatesColumns) {
  EXPECT_THROW(ArraySource({}), Error);
  EXPECT_THROW(ArraySource({{Tensor::empty({3}, DType::u8)}, {Tensor::empty({4}, DType::u8)}}), Error);
  EXPECT_THROW(ArraySource({{Tensor::empty({3}, DType::f32), true, 1.0f}}), Error);
  EXPECT_THROW(ArraySource({{Tensor::empty({}, DType::f32)}}), Error);
  ArraySource ok({{Tensor::empty({3, 4}, DType::u8), true, 0.5f}, {Tensor::empty({3}, DType::i32)}});
  EXPECT_EQ(ok.size(), 3);
  auto sig = ok.signature();
  ASSERT_EQ(sig.size(), 2u);
  EXPECT_EQ(sig[0].first, Shape({4}));
  EXPECT_EQ(sig[0].second, DType::f32);
  EXPECT_EQ(sig[1].first, Shape{});
  EXPECT_EQ(sig[1].second, DType::i32);
}

TEST(InputPipelineOptions, RejectsBadOptions) {
  PipelineOptions o;
  o.batch_size = 0;
  EXPECT_THROW(InputPipeline(make_source(4), o), Error);
  o.batch_size = 2;
  o.prefetch = -1;
  EXPECT_THROW(InputPipeline(make_source(4), o), Error);
}

// Data-parallel shards: together, in shard order, they are exactly the unsharded batches, also
// for a last batch smaller than the shard count.
TEST(InputPipeline, ShardsPartitionEachGlobalBatch) {
  auto source = make_source(23);
  PipelineOptions whole;
  whole.batch_size = 10;
  whole.seed = 5;
  InputPipeline reference(source, whole);
  for (int shards : {2, 3, 4}) {
    std::vector<std::unique_ptr<InputPipeline>> parts;
    for (int i = 0; i < shards; ++i) {
      PipelineOptions o = whole;
      o.shard_index = i;
      o.shard_count = shards;
      parts.push_back(std::make_unique<InputPipeline>(source, o));
      EXPECT_EQ(parts.back()->batches_per_epoch(), reference.batches_per_epoch());
    }
    reference.seek(0, 0);
    for (int b = 0; b < 7; ++b) {  // past the epoch end (3 batches: 10, 10, 3)
      Batch want = reference.next();
      std::vector<int64_t> got;
      for (int i = 0; i < shards; ++i) {
        Batch part = parts[i]->next();
        EXPECT_EQ(part.global_size, want.size);
        EXPECT_EQ(part.global_offset, static_cast<int64_t>(got.size()));
        EXPECT_LE(part.size, (want.size + shards - 1) / shards);
        std::vector<int64_t> ids = ids_of(part);
        got.insert(got.end(), ids.begin(), ids.end());
      }
      EXPECT_EQ(got, ids_of(want)) << shards << " shards, batch " << b;
    }
  }
  PipelineOptions bad = whole;
  bad.shard_index = 2;
  bad.shard_count = 2;
  EXPECT_THROW(InputPipeline(source, bad), Error);
}

}  // namespace
}  // namespace kiln::io
