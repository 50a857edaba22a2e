// Data-parallel `kiln train` under a real `mpirun -np 2` (OpenMPI): equivalence with one process
// on the global batch, the exchange variants agreeing bit for bit, a killed rank and a hung rank
// ending the job with the rank named, and resuming afterwards (docs/distributed.md).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <tuple>

#include "io/checkpoint_file.h"
#include "kiln_process.h"

namespace kiln::e2e {
namespace {

namespace fs = std::filesystem;

std::string flights(const std::string& file) { return source_dir() + "/examples/flights/" + file; }

bool have_mpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

// `kiln train` of examples/<example>/wide_deep.pbtxt on its data/<train_files>, one thread;
// `extra` overrides come last.
std::vector<std::string> wide_deep_args(const std::string& example, const std::string& train_files,
                                        const std::string& out, const std::vector<std::string>& extra) {
  const std::string dir = source_dir() + "/examples/" + example + "/";
  std::vector<std::string> a{"train",
                             "--config", dir + "wide_deep.pbtxt",
                             "--set", "data.csv.train_files=" + dir + "data/" + train_files,
                             "--set", "data.csv.eval_files=" + dir + "data/eval.csv",
                             "--set", "data.csv.feature_spec_file=" + dir + "feature_spec.pbtxt",
                             "--set", "data.csv.transform_state=" + out + "/../transform_state.pbtxt",
                             "--set", "output_dir=" + out,
                             "--set", "threads=1",
                             "--set", "log_every_steps=10"};
  for (auto& e : extra) {
    a.push_back("--set");
    a.push_back(e);
  }
  return a;
}

// Flights wide & deep (dense layers and eight embedding tables, so both gradient kinds) on one
// training shard.
std::vector<std::string> flights_args(const std::string& out, const std::vector<std::string>& extra) {
  return wide_deep_args("flights", "train-00000.csv", out, extra);
}

std::string mpirun_command(int ranks, const std::vector<std::string>& args) {
  std::string cmd =
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 mpirun -np " +
      std::to_string(ranks) + " --bind-to none " + shell_quote(kiln_binary());
  for (const auto& a : with_test_device(args)) cmd += " " + shell_quote(a);
  return cmd;
}

RunResult run_mpi(int ranks, const std::vector<std::string>& args, const std::string& dir) {
  std::string cmd = "cd " + shell_quote(dir) + " && " + mpirun_command(ranks, args) + " >" +
                    shell_quote(dir + "/.mpi.out") + " 2>" + shell_quote(dir + "/.mpi.err");
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir + "/.mpi.out");
  r.err = slurp(dir + "/.mpi.err");
  return r;
}

std::string final_checkpoint(const std::string& out, int step) {
  char name[64];
  std::snprintf(name, sizeof name, "/checkpoints/ckpt-%010d.kckpt", step);
  return out + name;
}

// Largest |a - b| / (1 + |a|) over every float tensor of two checkpoints (the same names).
double max_relative_difference(const std::string& a_path, const std::string& b_path) {
  io::CheckpointFile a = io::read_checkpoint_file(a_path), b = io::read_checkpoint_file(b_path);
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  double worst = 0;
  for (const io::NamedTensor& t : a.tensors) {
    const Tensor* u = b.find(t.name);
    if (!u) {
      ADD_FAILURE() << "no " << t.name << " in " << b_path;
      continue;
    }
    EXPECT_EQ(t.tensor.shape(), u->shape()) << t.name;
    if (t.tensor.dtype() != DType::f32) {
      EXPECT_EQ(0, std::memcmp(t.tensor.raw(), u->raw(), t.tensor.bytes())) << t.name;
      continue;
    }
    const float* x = t.tensor.data<float>();
    const float* y = u->data<float>();
    for (int64_t i = 0; i < t.tensor.numel(); ++i)
      worst = std::max(worst, std::abs(double(x[i]) - double(y[i])) / (1.0 + std::abs(double(x[i]))));
  }
  return worst;
}

bool bit_identical(const std::string& a_path, const std::string& b_path) {
  io::CheckpointFile a = io::read_checkpoint_file(a_path), b = io::read_checkpoint_file(b_path);
  if (a.tensors.size() != b.tensors.size()) return false;
  for (const io::NamedTensor& t : a.tensors) {
    const Tensor* u = b.find(t.name);
    if (!u || u->bytes() != t.tensor.bytes() || std::memcmp(u->raw(), t.tensor.raw(), t.tensor.bytes()) != 0)
      return false;
  }
  return true;
}

double eval_metric(const std::string& out, const std::string& name) {
  auto at = out.find("eval " + name + " ");
  return at == std::string::npos ? NAN : std::stod(out.substr(at + name.size() + 6));
}

TEST(DistributedTrainE2E, TwoRanksEqualOneProcessOnTheGlobalBatch) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun (OpenMPI) is not installed";
  ASSERT_TRUE(fs::exists(flights("data/eval.csv"))) << "run examples/flights/fetch_data.sh first";
  TempDir dir;
  const std::vector<std::string> run{"max_steps=40", "eval_every_steps=20"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> all = run;
    all.insert(all.end(), extra.begin(), extra.end());
    return all;
  };
  // One process, global batch 512 (it also analyzes the data and writes the transform state).
  RunResult one = run_kiln(flights_args(dir.path() + "/one", with({"batch_size=512"})), dir.path());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  // Two ranks of 256: 4 KB buckets all-reduced on the communication thread during backward,
  // sparse rows by all-gather ...
  RunResult a = run_mpi(2,
                        flights_args(dir.path() + "/two_a",
                                     with({"batch_size=256", "distributed.sparse_exchange=ALL_GATHER",
                                           "distributed.bucket_bytes=4000"})),
                        dir.path());
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_NE(a.err.find("data-parallel: 2 ranks x batch 256 = global batch 512"), std::string::npos) << a.err;
  EXPECT_NE(a.out.find("data-parallel 2 ranks: dense all-reduce"), std::string::npos) << a.out;
  // With both cores available to each rank, every bucket but the bottom one goes to the
  // communication thread.
  int buckets = 0, threaded = 0;
  auto at = a.out.find(" MB, ");
  ASSERT_NE(at, std::string::npos) << a.out;
  ASSERT_EQ(std::sscanf(a.out.c_str() + at, " MB, %d buckets, %d on the communication thread", &buckets, &threaded), 2)
      << a.out;
  EXPECT_GE(buckets, 4) << a.out;
  EXPECT_EQ(threaded, buckets - 1) << a.out;
  // ... and one bucket after backward, sparse rows by a dense all-reduce.
  RunResult b = run_mpi(2,
                        flights_args(dir.path() + "/two_b",
                                     with({"batch_size=256", "distributed.sparse_exchange=DENSE",
                                           "distributed.overlap=false"})),
                        dir.path());
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;

  // The exchange variants sum the same numbers in the same order: bit-identical weights.
  EXPECT_TRUE(bit_identical(final_checkpoint(dir.path() + "/two_a", 40), final_checkpoint(dir.path() + "/two_b", 40)));
  // Against one process the sums group differently (per rank, then across ranks), so weights,
  // Adam moments and metrics agree to float rounding, not bit for bit.
  double diff = max_relative_difference(final_checkpoint(dir.path() + "/one", 40),
                                        final_checkpoint(dir.path() + "/two_a", 40));
  std::printf("max relative difference 1 process vs 2 ranks after 40 Adam steps: %.3g\n", diff);
  EXPECT_LT(diff, 1e-4);
  for (const char* m : {"loss", "rmse", "mae"}) {
    double x = eval_metric(one.out, m), y = eval_metric(a.out, m);
    EXPECT_NEAR(x, y, 1e-5 * std::abs(x)) << m << "\n" << one.out << a.out;
  }
  // Rank 0 alone wrote checkpoints and events.
  EXPECT_TRUE(fs::exists(dir.path() + "/two_a/events"));
}

std::string babyweight(const std::string& file) { return source_dir() + "/examples/babyweight/" + file; }

// Babyweight wide & deep (seven embedding tables), both training shards, 30 steps.
std::vector<std::string> babyweight_args(const std::string& out, std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"max_steps=30", "eval_every_steps=30"});
  return wide_deep_args("babyweight", "train-*.csv", out, extra);
}

// The table exchanges of a data-parallel run's summary line: all-gather, dense, on the device.
std::tuple<int, int, int> table_exchanges(const std::string& out) {
  int gathered = -1, dense = -1, on_device = -1;
  auto at = out.find("KB/step; ");
  if (at != std::string::npos)
    std::sscanf(out.c_str() + at, "KB/step; %d all-gather, %d dense, %d of them on the device", &gathered, &dense,
                &on_device);
  return {gathered, dense, on_device};
}

// The row-sparse exchange on whatever device the suite runs (KILN_E2E_DEVICE): on the CPU over
// the host communicator, on sim on device buffers through the sim's stand-in for NCCL (the
// summary line counts which). Either way 2 ranks equal one process on the global batch, the
// all-gather and dense exchanges give the same bits, and on sim the device exchange gives the
// bits of the host exchange of a CPU run.
TEST(DistributedTrainE2E, BabyweightEmbeddingsTwoRanksEqualOneProcessOnEitherExchangePath) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun (OpenMPI) is not installed";
  ASSERT_TRUE(fs::exists(babyweight("data/eval.csv"))) << "run examples/babyweight/fetch_data.sh first";
  const char* env = std::getenv("KILN_E2E_DEVICE");
  const bool on_device = env && *env;
  TempDir dir;
  RunResult one = run_kiln(babyweight_args(dir.path() + "/one", {"batch_size=128"}), dir.path());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  RunResult a = run_mpi(2, babyweight_args(dir.path() + "/two_a", {"batch_size=64", "distributed.sparse_exchange=ALL_GATHER"}),
                        dir.path());
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  RunResult b = run_mpi(2, babyweight_args(dir.path() + "/two_b", {"batch_size=64", "distributed.sparse_exchange=DENSE"}),
                        dir.path());
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  // 30 steps x 7 tables, each exchanged every step (every batch has rows of every table).
  EXPECT_EQ(table_exchanges(a.out), std::make_tuple(210, 0, on_device ? 210 : 0)) << a.out;
  EXPECT_EQ(table_exchanges(b.out), std::make_tuple(0, 210, on_device ? 210 : 0)) << b.out;
  const std::string last_a = final_checkpoint(dir.path() + "/two_a", 30), last_b = final_checkpoint(dir.path() + "/two_b", 30);
  EXPECT_TRUE(bit_identical(last_a, last_b));
  double diff = max_relative_difference(final_checkpoint(dir.path() + "/one", 30), last_a);
  std::printf("babyweight: max relative difference 1 process vs 2 ranks after 30 AdamW steps: %.3g\n", diff);
  EXPECT_LT(diff, 1e-4);
  for (const char* m : {"loss", "rmse"}) {
    double x = eval_metric(one.out, m), y = eval_metric(a.out, m);
    EXPECT_NEAR(x, y, 1e-5 * std::abs(x)) << m << "\n" << one.out << a.out;
  }
  if (!on_device) return;
  // The host exchange of a CPU run gives the device exchange's bits: the all-gather run above,
  // and a dense exchange of a model with batch norm, whose running statistics are averaged over
  // the ranks in the same exchange (on the device on sim).
  RunResult host = run_mpi(2,
                           babyweight_args(dir.path() + "/two_cpu", {"batch_size=64", "distributed.sparse_exchange=ALL_GATHER",
                                                                     "device=CPU"}),
                           dir.path());
  ASSERT_EQ(host.exit_code, 0) << host.out << host.err;
  EXPECT_EQ(table_exchanges(host.out), std::make_tuple(210, 0, 0)) << host.out;
  EXPECT_TRUE(bit_identical(final_checkpoint(dir.path() + "/two_cpu", 30), last_a));
  std::string config = slurp(babyweight("wide_deep.pbtxt"));
  const std::string h1 = "layers { name: \"h1\" dense { units: 16 activation: RELU } }\n";
  ASSERT_NE(config.find(h1), std::string::npos);
  config.replace(config.find(h1), h1.size(), h1 + "  layers { name: \"h1_bn\" batch_norm {} }\n");
  dir.file("bn.pbtxt", config);
  auto bn_args = [&](const std::string& out, const std::string& device) {
    std::vector<std::string> args = babyweight_args(dir.path() + "/" + out,
                                                    {"batch_size=64", "distributed.sparse_exchange=DENSE", "device=" + device});
    args[2] = dir.path() + "/bn.pbtxt";
    return args;
  };
  RunResult bn_sim = run_mpi(2, bn_args("bn_sim", "SIM"), dir.path());
  ASSERT_EQ(bn_sim.exit_code, 0) << bn_sim.out << bn_sim.err;
  EXPECT_EQ(table_exchanges(bn_sim.out), std::make_tuple(0, 210, 210)) << bn_sim.out;
  RunResult bn_cpu = run_mpi(2, bn_args("bn_cpu", "CPU"), dir.path());
  ASSERT_EQ(bn_cpu.exit_code, 0) << bn_cpu.out << bn_cpu.err;
  const std::string bn_last = final_checkpoint(dir.path() + "/bn_sim", 30);
  EXPECT_TRUE(bit_identical(final_checkpoint(dir.path() + "/bn_cpu", 30), bn_last));
  // The running statistics are in the checkpoint ("params/state"), so the comparison covers them.
  const io::CheckpointFile bn = io::read_checkpoint_file(bn_last);
  const Tensor* state = bn.find("params/state");
  ASSERT_TRUE(state);
  EXPECT_GT(state->numel(), 0);
}

// The newest checkpoint of a run.
std::string newest_checkpoint(const std::string& out) {
  std::string newest;
  for (const auto& e : fs::directory_iterator(out + "/checkpoints"))
    if (e.path().extension() == ".kckpt" && e.path().string() > newest) newest = e.path().string();
  return newest;
}

// Streamed example shards under mpirun: each rank reads its own rows (three shards of uneven
// blocks split over two ranks), both run the same number of steps per epoch (no hang at an
// epoch's end), evaluation is split the same way and agrees with one process, and a second run
// with the same seed and world size gives the same weights.
TEST(DistributedTrainE2E, StreamedShardsEachRankReadsItsOwnBlocks) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun (OpenMPI) is not installed";
  ASSERT_TRUE(fs::exists(flights("data/eval.csv"))) << "run examples/flights/fetch_data.sh first";
  TempDir dir;
  const std::string state = dir.path() + "/state.pbtxt";
  RunResult r = run_kiln({"analyze", "--spec", flights("feature_spec.pbtxt"), "--data", flights("data/train-*.csv"),
                          "--output", state, "--quiet"},
                         dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [data, out, shards] : {std::tuple{flights("data/train-*.csv"), "train", "3"},
                                          std::tuple{flights("data/eval.csv"), "eval", "2"}}) {
    r = run_kiln({"transform", "--state", state, "--data", data, "--output", dir.path() + "/" + out, "--shards", shards},
                 dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto args = [&](const std::string& out, const std::string& verb = "train") {
    return std::vector<std::string>{verb, "--config", flights("wide_deep.pbtxt"),
                                    "--set", "data.csv.train_files=" + dir.path() + "/train/*.kex",
                                    "--set", "data.csv.eval_files=" + dir.path() + "/eval/*.kex",
                                    "--set", "data.csv.feature_spec_file=" + flights("feature_spec.pbtxt"),
                                    "--set", "data.csv.transform_state=" + state,
                                    "--set", "data.csv.reading=STREAMING",
                                    "--set", "data.csv.shuffle_buffer=40000",
                                    "--set", "epochs=2",
                                    "--set", "threads=1",
                                    "--set", "output_dir=" + dir.path() + "/" + out};
  };
  RunResult a = run_mpi(2, args("a"), dir.path());
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  size_t at = a.err.find("2 ranks read their own blocks, ");
  ASSERT_NE(at, std::string::npos) << a.err;
  long long per_rank = 0, left_out = 0;
  ASSERT_EQ(std::sscanf(a.err.c_str() + at, "2 ranks read their own blocks, %lld rows each per epoch (%lld left out",
                        &per_rank, &left_out),
            2)
      << a.err;
  EXPECT_EQ(per_rank, 294617 / 2);
  EXPECT_EQ(left_out, 1) << "an odd row count: one rank has a row more";
  const long long steps = 2 * ((per_rank + 255) / 256);
  EXPECT_NE(a.out.find("trained " + std::to_string(steps) + " steps (2 epochs)"), std::string::npos) << a.out;
  RunResult b = run_mpi(2, args("b"), dir.path());
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  EXPECT_TRUE(bit_identical(newest_checkpoint(dir.path() + "/a"), newest_checkpoint(dir.path() + "/b")))
      << "two runs with the same seed and ranks differ";
  // The streamed, rank-split evaluation against one process holding the eval shards in memory.
  std::vector<std::string> one = args("a", "evaluate");
  one.insert(one.end(), {"--set", "data.csv.reading=IN_MEMORY"});
  RunResult e = run_kiln(one, dir.path());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  for (const char* m : {"loss", "rmse", "mae"}) {
    const double x = eval_metric(a.out, m);
    auto got = e.out.find(std::string(m) + " ");
    ASSERT_NE(got, std::string::npos) << e.out;
    const double y = std::stod(e.out.substr(got + std::strlen(m) + 1));
    EXPECT_NEAR(x, y, 1e-5 * std::abs(y)) << m << "\n" << a.out << e.out;
  }
}

// Streamed CSV under mpirun: each rank reads its own files (flights' seven: four and three), both
// run the steps of the rank with fewer rows, and the run is deterministic for seed and ranks.
TEST(DistributedTrainE2E, StreamedCsvEachRankReadsItsOwnFiles) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun (OpenMPI) is not installed";
  ASSERT_TRUE(fs::exists(flights("data/eval.csv"))) << "run examples/flights/fetch_data.sh first";
  TempDir dir;
  auto args = [&](const std::string& out) {
    return flights_args(dir.path() + "/" + out,
                        {"data.csv.train_files=" + flights("data/train-*.csv"), "data.csv.reading=STREAMING",
                         "data.csv.shuffle_buffer=40000", "max_steps=700", "eval_every_steps=350"});
  };
  RunResult a = run_mpi(2, args("a"), dir.path());
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  size_t at = a.err.find("2 ranks read their own files, ");
  ASSERT_NE(at, std::string::npos) << a.err;
  long long per_rank = 0, left_out = 0;
  ASSERT_EQ(std::sscanf(a.err.c_str() + at, "2 ranks read their own files, %lld rows each per epoch (%lld left out",
                        &per_rank, &left_out),
            2)
      << a.err;
  EXPECT_EQ(2 * per_rank + left_out, 294617);
  EXPECT_LT(per_rank, 294617 / 2) << "three files of seven are fewer rows than four";
  const long long per_epoch = (per_rank + 255) / 256;
  EXPECT_LT(per_epoch, 700) << "the run crosses an epoch's end";
  RunResult b = run_mpi(2, args("b"), dir.path());
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  EXPECT_TRUE(bit_identical(final_checkpoint(dir.path() + "/a", 700), final_checkpoint(dir.path() + "/b", 700)))
      << "two runs with the same seed and ranks differ";
  // Fewer files than ranks: a clear error before any step.
  RunResult one_file = run_mpi(2,
                               flights_args(dir.path() + "/c", {"data.csv.train_files=" + flights("data/train-00000.csv"),
                                                                "data.csv.reading=STREAMING"}),
                               dir.path());
  EXPECT_NE(one_file.exit_code, 0);
  EXPECT_NE(one_file.err.find("1 CSV file cannot be streamed by 2 ranks (each reads its own files)"), std::string::npos)
      << one_file.err;
}

TEST(DistributedTrainE2E, ImageModelTwoRanksEqualOneProcess) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun (OpenMPI) is not installed";
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  TempDir dir;
  dir.file("mlp.pbtxt", R"(
data { idx {
  train_images: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
  train_labels: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
  eval_images: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
  eval_labels: "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
  max_train_examples: 2000
  max_eval_examples: 1001
} }
model {
  inputs { name: "image" shape: [28, 28, 1] }
  layers { flatten {} }
  layers { dense { units: 32 activation: RELU } }
  layers { dropout { rate: 0.2 } }
  layers { dense { units: 10 } }
  head { type: MULTICLASS num_classes: 10 }
}
optimizer { type: SGD learning_rate: 0.05 momentum: 0.9 }
epochs: 2
threads: 1
)");
  // 2000 examples in global batches of 300: the last batch of each epoch (200) splits 100/100.
  // Dropout is keyed by the global row, so the ranks drop what one process drops.
  RunResult one = run_kiln({"train", "--config", "mlp.pbtxt", "--set", "output_dir=one", "--set", "batch_size=300"},
                           dir.path());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  RunResult two = run_mpi(2, {"train", "--config", "mlp.pbtxt", "--set", "output_dir=two", "--set", "batch_size=150"},
                          dir.path());
  ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
  double diff = max_relative_difference(final_checkpoint(dir.path() + "/one", 14), final_checkpoint(dir.path() + "/two", 14));
  std::printf("max relative difference 1 process vs 2 ranks after 14 SGD steps: %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
  // 1001 eval examples split across the ranks (an example near a tie may flip).
  EXPECT_NEAR(eval_metric(one.out, "accuracy"), eval_metric(two.out, "accuracy"), 1.1 / 1001) << one.out << two.out;
}

// The pid of rank `rank` among mpirun's children (OpenMPI exports the rank to each).
pid_t rank_pid(pid_t mpirun, int rank) {
  const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = slurp(e.path().string() + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2 || ppid != mpirun) continue;
    std::string env = slurp(e.path().string() + "/environ");
    for (size_t at = 0; at < env.size();) {
      size_t end = env.find('\0', at);
      if (env.compare(at, end - at, want) == 0) return static_cast<pid_t>(std::stoi(name));
      if (end == std::string::npos) break;
      at = end + 1;
    }
  }
  return -1;
}

struct Exit {
  int code = -1;
  double seconds = 0;
};

// Starts mpirun in the background; its output goes to dir/job.log.
pid_t spawn_mpi(int ranks, const std::vector<std::string>& args, const std::string& dir) {
  pid_t pid = fork();
  if (pid == 0) {
    std::string cmd = "cd " + shell_quote(dir) + " && exec env " + mpirun_command(ranks, args) + " >job.log 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

Exit wait_for_exit(pid_t pid, double limit_s) {
  auto t0 = std::chrono::steady_clock::now();
  Exit e;
  for (;;) {
    int status = 0;
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (waitpid(pid, &status, WNOHANG) == pid) {
      e.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return e;
    }
    if (e.seconds > limit_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return e;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Waits until dir holds a checkpoint; false after `limit_s`.
bool wait_for_checkpoint(const std::string& dir, double limit_s) {
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < limit_s) {
    if (fs::is_directory(dir))
      for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".kckpt") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(DistributedTrainE2E, KilledRankEndsTheJobAndTrainingResumes) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun (OpenMPI) is not installed";
  TempDir dir;
  auto args = flights_args(dir.path() + "/run", {"batch_size=256", "max_steps=1000000", "checkpoint.every_steps=20",
                                                 "eval_every_steps=1000000"});
  pid_t job = spawn_mpi(2, args, dir.path());
  ASSERT_TRUE(wait_for_checkpoint(dir.path() + "/run/checkpoints", 60)) << slurp(dir.path() + "/job.log");
  pid_t victim = rank_pid(job, 1);
  ASSERT_GT(victim, 0) << "rank 1 not found among mpirun's children";
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  Exit e = wait_for_exit(job, 90);
  std::string log = slurp(dir.path() + "/job.log");
  std::printf("rank 1 killed: the job ended after %.2f s with status %d\n", e.seconds, e.code);
  EXPECT_NE(e.code, 0) << log;
  EXPECT_GT(e.code, -1) << "still running after 90 s:\n" << log;
  EXPECT_LT(e.seconds, 60.0) << log;
  EXPECT_NE(log.find("rank 1"), std::string::npos) << log;
  EXPECT_EQ(rank_pid(job, 0), -1) << "rank 0 outlived the job";

  // A new job resumes from rank 0's last checkpoint and finishes.
  std::string last;
  for (const auto& c : fs::directory_iterator(dir.path() + "/run/checkpoints"))
    if (c.path().extension() == ".kckpt") last = std::max(last, c.path().filename().string());
  int64_t at = std::stoll(last.substr(5, 10));
  auto resume = flights_args(dir.path() + "/run", {"batch_size=256", "max_steps=" + std::to_string(at + 30),
                                                   "checkpoint.every_steps=20", "eval_every_steps=1000000"});
  RunResult r = run_mpi(2, resume, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("at step " + std::to_string(at)), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("trained " + std::to_string(at + 30) + " steps"), std::string::npos) << r.out;
}

TEST(DistributedTrainE2E, HungRankEndsTheJobAfterTheCollectiveTimeout) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun (OpenMPI) is not installed";
  TempDir dir;
  auto args = flights_args(dir.path() + "/run", {"batch_size=256", "max_steps=1000000", "checkpoint.every_steps=20",
                                                 "eval_every_steps=1000000", "distributed.collective_timeout_s=3"});
  pid_t job = spawn_mpi(2, args, dir.path());
  ASSERT_TRUE(wait_for_checkpoint(dir.path() + "/run/checkpoints", 60)) << slurp(dir.path() + "/job.log");
  pid_t victim = rank_pid(job, 1);
  ASSERT_GT(victim, 0);
  ASSERT_EQ(kill(victim, SIGSTOP), 0);  // alive but silent: the launcher sees nothing wrong
  Exit e = wait_for_exit(job, 90);
  kill(victim, SIGKILL);  // in case the launcher left it stopped
  std::string log = slurp(dir.path() + "/job.log");
  std::printf("rank 1 stopped: the job ended after %.2f s with status %d\n", e.seconds, e.code);
  EXPECT_NE(e.code, 0) << log;
  EXPECT_GT(e.code, -1) << "still running after 90 s:\n" << log;
  EXPECT_LT(e.seconds, 30.0) << log;
  // Rank 0 names itself and the call it waited in (a gradient all-reduce, most of the time).
  EXPECT_NE(log.find("kiln: error: rank 0/2: MPI_"), std::string::npos) << log;
  EXPECT_NE(log.find("has not completed after 3 s"), std::string::npos) << log;
}

}  // namespace
}  // namespace kiln::e2e
