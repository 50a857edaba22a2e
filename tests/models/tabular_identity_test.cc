// The preprocessing promise on the real example data: rows through the training input path and
// rows through a Transformer loaded from the saved TransformState give bit-identical model
// inputs; the state is the same for any thread count and sharding.
#include <gtest/gtest.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/communicator.h"
#include "io/config_file.h"
#include "io/csv_reader.h"
#include "io/file_pattern.h"
#include "models/training_data.h"
#include "transform/csv_rows.h"
#include "transform/dataset_analysis.h"
#include "transform/transformer.h"

namespace kiln::models {
namespace {

namespace fs = std::filesystem;

std::string source_dir() { return KILN_SOURCE_DIR_PATH; }

TrainConfig example_config(const std::string& name, const std::string& out) {
  std::string data = source_dir() + "/examples/" + name + "/data/eval.csv";
  if (!fs::exists(data)) ADD_FAILURE() << "run examples/" << name << "/fetch_data.sh first (scripts/test.sh does)";
  TrainConfig c;
  // Its data paths are relative to the config file, which load_config resolves.
  io::load_config(source_dir() + "/examples/" + name + "/wide_deep.pbtxt", c);
  c.set_output_dir(out);
  fs::remove_all(out);
  return c;
}

void check_identity(const std::string& name) {
  SCOPED_TRACE(name);
  TrainConfig config = example_config(name, "identity_" + name);
  TrainingData data = load_training_data(config, true);  // analyzes and writes the state
  ASSERT_TRUE(data.transform_state.has_value());
  // The state as saved on disk (text format) is exactly the state training used.
  TransformState saved;
  io::load_config(transform_state_path(config), saved);
  EXPECT_EQ(saved.SerializeAsString(), data.transform_state->SerializeAsString());

  // Training path: every example, in order, through the pipeline's source.
  const auto& train = *data.train;
  std::vector<int64_t> all(static_cast<size_t>(train.size()));
  for (int64_t i = 0; i < train.size(); ++i) all[static_cast<size_t>(i)] = i;
  std::vector<Tensor> batch;
  for (const auto& [shape, dtype] : train.signature()) batch.push_back(Tensor::empty(shape.with_batch(train.size()), dtype));
  train.gather(all.data(), train.size(), batch);

  // Serving path: a Transformer built from the saved state over the raw CSV rows.
  std::vector<std::string> files;
  for (const auto& p : config.data().csv().train_files()) files.push_back(p);
  FeatureSpec spec = saved.spec();
  io::CsvReader reader(io::expand_file_patterns(files), transform::csv_options(spec.csv(), 1),
                       std::make_shared<io::ErrorBudget>(spec.csv().max_bad_rows()));
  transform::Transformer transformer(saved, reader.column_names(), true);
  std::vector<float> dense;
  std::vector<std::vector<int64_t>> ids(batch.size() / 2), offsets(batch.size() / 2);
  std::vector<float> labels;
  reader.for_each_chunk([&](const io::CsvChunk& chunk) {
    io::ErrorBudget budget(-1);
    transform::ModelInputs in = transformer.apply(transform::CsvRows(chunk), &budget);
    dense.insert(dense.end(), in.dense.data<float>(), in.dense.data<float>() + in.dense.numel());
    for (size_t c = 0; c < in.ids.size(); ++c) {
      const int64_t* o = in.ids[c].offsets.data<int64_t>();
      int64_t base = ids[c].empty() ? 0 : static_cast<int64_t>(ids[c].size());
      if (offsets[c].empty()) offsets[c].push_back(0);
      ids[c].insert(ids[c].end(), in.ids[c].ids.data<int64_t>(), in.ids[c].ids.data<int64_t>() + o[in.batch]);
      for (int64_t r = 1; r <= in.batch; ++r) offsets[c].push_back(base + o[r]);
    }
    labels.insert(labels.end(), in.label.data<float>(), in.label.data<float>() + in.batch);
  });
  ASSERT_EQ(static_cast<int64_t>(labels.size()), train.size());
  ASSERT_EQ(dense.size() * sizeof(float), batch[0].bytes());
  EXPECT_EQ(0, std::memcmp(dense.data(), batch[0].raw(), batch[0].bytes())) << "dense inputs differ";
  size_t columns = (batch.size() - 2) / 2;
  for (size_t c = 0; c < columns; ++c) {
    const Tensor& bid = batch[1 + 2 * c];
    const Tensor& boff = batch[2 + 2 * c];
    ASSERT_EQ(static_cast<int64_t>(offsets[c].size()), boff.numel()) << "column " << c;
    EXPECT_EQ(0, std::memcmp(offsets[c].data(), boff.raw(), boff.bytes())) << "offsets of column " << c;
    EXPECT_EQ(0, std::memcmp(ids[c].data(), bid.raw(), ids[c].size() * sizeof(int64_t))) << "ids of column " << c;
  }
  EXPECT_EQ(0, std::memcmp(labels.data(), batch.back().raw(), batch.back().bytes())) << "labels differ";
  fs::remove_all(config.output_dir());
}

TEST(TabularIdentity, FlightsTrainingAndLoadedTransformerAgreeBitForBit) { check_identity("flights"); }
TEST(TabularIdentity, BabyweightTrainingAndLoadedTransformerAgreeBitForBit) { check_identity("babyweight"); }

// 1 thread over one file vs 2 threads over 7 shards of the same rows (and tiny chunks, so rows
// are spread over many accumulators): the same TransformState, bit for bit.
TEST(ShardingInvariance, OneFileOneThreadEqualsSevenShardsTwoThreads) {
  std::string dir = source_dir() + "/examples/flights/data";
  ASSERT_TRUE(fs::exists(dir + "/train-00006.csv")) << "run examples/flights/fetch_data.sh first";
  FeatureSpec spec;
  io::load_config(source_dir() + "/examples/flights/feature_spec.pbtxt", spec);
  std::string joined = fs::absolute("flights_joined.csv").string();
  {
    std::ofstream out(joined);
    for (int k = 0; k < 7; ++k) {
      std::ifstream in(dir + "/train-0000" + std::to_string(k) + ".csv");
      std::string line;
      bool header = true;
      while (std::getline(in, line)) {
        if (header && k > 0) {
          header = false;
          continue;
        }
        header = false;
        out << line << '\n';
      }
    }
  }
  LocalCommunicator local;
  transform::AnalysisOptions one{{joined}, 1, false};
  transform::AnalysisOptions seven{{dir + "/train-*.csv"}, 2, false};
  TransformState a = transform::analyze_dataset(spec, one, local);
  TransformState b = transform::analyze_dataset(spec, seven, local);
  a.clear_files();
  b.clear_files();
  EXPECT_GT(a.rows(), 290000);
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  fs::remove(joined);
}

}  // namespace
}  // namespace kiln::models
