// kiln train --warm_start_from (models/warm_start.h), end to end with the real binary: embedding
// rows follow their tokens into a new vocabulary, and a warm-started model reaches the old
// model's evaluation loss in fewer steps than a cold start.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/checkpoint_file.h"
#include "tests/e2e/kiln_process.h"

namespace kiln::e2e {
namespace {

namespace fs = std::filesystem;

// Rows of "token,x,y": each token `count` times; y = x + the token's effect.
void add_rows(std::ofstream& out, const std::string& token, int count, double effect) {
  for (int i = 0; i < count; ++i) {
    const double x = (i % 17) / 17.0;
    out << token << ',' << x << ',' << x + effect << '\n';
  }
}

// v1: a_00..a_31 100 times each, "target" 50 times, b_00..b_09 10 times: target's id is 32
// (vocabularies list the most frequent first). v2 adds n_00..n_23, 80 times each: target moves
// to id 56.
std::string write_data(const TempDir& dir, const std::string& name, bool grown) {
  const std::string path = dir.path() + "/" + name;
  std::ofstream out(path);
  out << "token,x,y\n";
  for (int k = 0; k < 32; ++k) add_rows(out, "a_" + std::string(k < 10 ? "0" : "") + std::to_string(k), 100, k % 5);
  add_rows(out, "target", 50, 7.0);
  for (int k = 0; k < 10; ++k) add_rows(out, "b_0" + std::to_string(k), 10, -2.0);
  if (grown)
    for (int k = 0; k < 24; ++k) add_rows(out, "n_" + std::string(k < 10 ? "0" : "") + std::to_string(k), 80, 1.0);
  return path;
}

std::string config(const TempDir& dir) {
  return dir.file("config.pbtxt", R"(
data { csv { feature_spec {
  features { name: "token" categorical { vocabulary {} } }
  features { name: "x" numeric { scaling: Z_SCORE } }
  label { column: "y" type: REGRESSION }
} } }
model {
  layers { name: "token_emb" inputs: "token" embedding { dim: 4 } }
  layers { name: "all" inputs: ["dense", "token_emb"] concat {} }
  layers { name: "hidden" dense { units: 8 activation: RELU } }
  layers { name: "out" dense { units: 1 } }
  head { type: REGRESSION }
}
optimizer { type: ADAM learning_rate: 0.05 }
batch_size: 64
log_every_steps: 1000
)");
}

std::vector<float> row(const std::string& checkpoint, const std::string& table, int64_t r) {
  const io::CheckpointFile f = io::read_checkpoint_file(checkpoint);
  const Tensor* t = f.find("params/" + table);
  EXPECT_TRUE(t) << table;
  if (!t) return {};
  const int64_t dim = t->shape()[1];
  EXPECT_LT(r, t->shape()[0]);
  return std::vector<float>(t->data<float>() + r * dim, t->data<float>() + (r + 1) * dim);
}

TEST(WarmStartE2E, ATokenThatMovedFromId32To56KeepsItsLearnedRow) {
  TempDir dir;
  const std::string cfg = config(dir);
  const std::string v1 = write_data(dir, "v1.csv", false), v2 = write_data(dir, "v2.csv", true);
  auto train = [&](const std::string& out, const std::string& data, std::vector<std::string> extra) {
    std::vector<std::string> a{"train", "--config", cfg, "--set", "data.csv.train_files=" + data, "--set",
                               "output_dir=" + dir.path() + "/" + out};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_kiln(a, dir.path());
  };
  RunResult old = train("old", v1, {"--set", "max_steps=200"});
  ASSERT_EQ(old.exit_code, 0) << old.err;
  // Learning rate 1e-30 (0 is refused): the new runs' weights are what the warm start (or the initialisation) left.
  RunResult warm = train("warm", v2, {"--set", "max_steps=1", "--set", "optimizer.learning_rate=1e-30",
                                      "--warm_start_from", dir.path() + "/old"});
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  EXPECT_NE(warm.err.find("warm start: token_emb/table (token): 43 tokens kept their rows (11 at new ids), 24 new, "
                          "0 left the vocabulary"),
            std::string::npos)
      << warm.err;
  EXPECT_NE(warm.err.find("1 remapped to the new ids, 0 initialised afresh"), std::string::npos) << warm.err;
  RunResult cold = train("cold", v2, {"--set", "max_steps=1", "--set", "optimizer.learning_rate=1e-30"});
  ASSERT_EQ(cold.exit_code, 0) << cold.err;
  const std::string a = dir.path() + "/old/checkpoints/ckpt-0000000200.kckpt";
  const std::string b = dir.path() + "/warm/checkpoints/ckpt-0000000001.kckpt";
  const std::string c = dir.path() + "/cold/checkpoints/ckpt-0000000001.kckpt";
  // The target token: id 32 before, 56 now, the same learned row.
  EXPECT_EQ(row(b, "token_emb/table", 56), row(a, "token_emb/table", 32));
  EXPECT_NE(row(b, "token_emb/table", 56), row(c, "token_emb/table", 56)) << "not just the fresh initialisation";
  // A token that kept its id keeps its row; a new token (n_00, id 32 now) starts as a cold run does.
  EXPECT_EQ(row(b, "token_emb/table", 5), row(a, "token_emb/table", 5));
  EXPECT_EQ(row(b, "token_emb/table", 32), row(c, "token_emb/table", 32));
  // b_03 moved from 36 to 60; the OOV bucket (one) from 43 to 67.
  EXPECT_EQ(row(b, "token_emb/table", 60), row(a, "token_emb/table", 36));
  EXPECT_EQ(row(b, "token_emb/table", 67), row(a, "token_emb/table", 43));
}

// The steps a run took to reach `target` eval loss (eval_every_steps apart), -1 if never.
int64_t steps_to(const std::string& out, double target) {
  size_t at = 0;
  while ((at = out.find("eval at step ", at)) != std::string::npos) {
    long long step = 0;
    double loss = 0;
    if (std::sscanf(out.c_str() + at, "eval at step %lld (epoch %*d): loss %lf", &step, &loss) == 2 && loss <= target)
      return step;
    ++at;
  }
  return -1;
}

// Flights: a model trained on the first three months' files, then new data (all files, a new
// analysis: vocabularies grow and reorder). Warm-started, the new run reaches the old model's
// eval loss in fewer steps than a cold start.
TEST(WarmStartE2E, AWarmStartReachesTheOldLossInFewerStepsThanAColdStart) {
  const std::string flights = source_dir() + "/examples/flights";
  ASSERT_TRUE(fs::exists(flights + "/data/eval.csv")) << "run examples/flights/fetch_data.sh first";
  TempDir dir;
  auto train = [&](const std::string& out, const std::string& files, std::vector<std::string> extra) {
    std::vector<std::string> a{"train", "--config", flights + "/wide_deep.pbtxt", "--set", "data.csv.train_files=" + files,
                               "--set", "output_dir=" + dir.path() + "/" + out, "--set", "threads=1",
                               "--set", "lr_schedule.type=CONSTANT"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_kiln(a, dir.path());
  };
  RunResult old = train("old", flights + "/data/train-0000[0-2].csv", {"--set", "epochs=1"});
  ASSERT_EQ(old.exit_code, 0) << old.err;
  double target = 0;
  const size_t at = old.out.find("eval loss ");
  ASSERT_NE(at, std::string::npos) << old.out;
  target = std::stod(old.out.substr(at + 10));
  const std::vector<std::string> run{"--set", "max_steps=600", "--set", "eval_every_steps=50"};
  std::vector<std::string> warm_args = run;
  warm_args.insert(warm_args.end(), {"--warm_start_from", dir.path() + "/old"});
  RunResult warm = train("warm", flights + "/data/train-*.csv", warm_args);
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  RunResult cold = train("cold", flights + "/data/train-*.csv", run);
  ASSERT_EQ(cold.exit_code, 0) << cold.err;
  const int64_t w = steps_to(warm.err, target), c = steps_to(cold.err, target);
  std::printf("old model: eval loss %.4f after %s; steps to reach it: warm start %lld, cold start %lld\n", target,
              "1 epoch of 3 files", static_cast<long long>(w), static_cast<long long>(c));
  ASSERT_GT(w, 0) << warm.err;
  EXPECT_TRUE(c < 0 || w < c) << "warm " << w << " cold " << c << "\n" << cold.err;
}


// From an exported servable, into a changed model: a cross with more hash buckets and a wider
// first hidden layer start afresh, each with a warning naming it and why; the rest carries over.
TEST(WarmStartE2E, FromAServableChangedPartsStartAfreshWithAWarning) {
  const std::string flights = source_dir() + "/examples/flights";
  ASSERT_TRUE(fs::exists(flights + "/data/eval.csv")) << "run examples/flights/fetch_data.sh first";
  TempDir dir;
  std::vector<std::string> old_run{"--config", flights + "/wide_deep.pbtxt", "--set",
                                   "data.csv.train_files=" + flights + "/data/train-00000.csv", "--set",
                                   "output_dir=" + dir.path() + "/old", "--set", "max_steps=50"};
  std::vector<std::string> args{"train"};
  args.insert(args.end(), old_run.begin(), old_run.end());
  RunResult old = run_kiln(args, dir.path());
  ASSERT_EQ(old.exit_code, 0) << old.err;
  args = {"export"};
  args.insert(args.end(), old_run.begin(), old_run.end());
  args.insert(args.end(), {"--model_base_path", dir.path() + "/models/flights"});
  RunResult x = run_kiln(args, dir.path());
  ASSERT_EQ(x.exit_code, 0) << x.err;
  std::string spec = slurp(flights + "/feature_spec.pbtxt");
  const size_t at = spec.find("hash_buckets: 64");
  ASSERT_NE(at, std::string::npos);
  spec.replace(at, 16, "hash_buckets: 128");
  const std::string spec_file = dir.file("spec.pbtxt", spec);
  RunResult warm = run_kiln({"train", "--config", flights + "/wide_deep.pbtxt", "--set",
                             "data.csv.feature_spec_file=" + spec_file, "--set", "output_dir=" + dir.path() + "/new",
                             "--set", "model.layers[9].dense.units=80", "--set", "max_steps=10", "--warm_start_from",
                             dir.path() + "/models/flights/1"},
                            dir.path());
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  for (const char* w : {"kiln: warning: warm start: cross_emb/table: its input 'origin_x_hour': its configuration "
                        "changed; initialised afresh",
                        "kiln: warning: warm start: cross_w/table: its input 'origin_x_hour': its configuration "
                        "changed; initialised afresh",
                        "kiln: warning: warm start: h1/kernel: shape [39, 64] in the warm-start model, [39, 80] now (its "
                        "input changed); initialised afresh",
                        "kiln: warning: warm start: h2/kernel: shape [64, 32] in the warm-start model, [80, 32] now",
                        "warm start from servable " })
    EXPECT_NE(warm.err.find(w), std::string::npos) << w << "\n" << warm.err;
}

}  // namespace
}  // namespace kiln::e2e
