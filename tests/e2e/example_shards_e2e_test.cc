// kiln transform's example shards (docs/example_shards.md), end to end with the real binary.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "io/checkpoint_file.h"
#include "tests/e2e/kiln_process.h"

namespace kiln::e2e {
namespace {

namespace fs = std::filesystem;

std::string flights() { return source_dir() + "/examples/flights"; }

// The flights state, analyzed from `data` into DIR/NAME.
void analyze(const TempDir& dir, const std::string& data, const std::string& name) {
  ASSERT_TRUE(fs::exists(flights() + "/data/eval.csv")) << "run examples/flights/fetch_data.sh first";
  RunResult r = run_kiln({"analyze", "--spec", flights() + "/feature_spec.pbtxt", "--data", data, "--output", name,
                          "--quiet"},
                         dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

RunResult transform(const TempDir& dir, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"transform", "--state", "state.pbtxt", "--data", flights() + "/data/train-*.csv"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_kiln(args, dir.path());
}

// The reader the docs print returns, for every column, what --format npy writes.
TEST(ExampleShardsE2E, NumpyReaderInTheDocs) {
  const char* python = std::getenv("KILN_PYTHON");
  if (!python) GTEST_SKIP() << "KILN_PYTHON (a python with numpy) is not set; scripts/test.sh sets it";
  TempDir dir;
  analyze(dir, flights() + "/data/train-*.csv", "state.pbtxt");
  RunResult r = transform(dir, {"--output", "shards", "--shard_size_mb", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = transform(dir, {"--output", "npy", "--format", "npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string cmd = shell_quote(python) + " " + shell_quote(source_dir() + "/tests/tools/example_shard_reader_check.py") +
                    " " + shell_quote(source_dir() + "/docs/example_shards.md") + " " + shell_quote(dir.path() + "/npy");
  int shards = 0;
  for (; fs::exists(dir.path() + "/shards/examples-0000" + std::to_string(shards) + ".kex"); ++shards)
    cmd += " " + shell_quote(dir.path() + "/shards/examples-0000" + std::to_string(shards) + ".kex");
  EXPECT_GE(shards, 3) << "8 MiB shards of the 21 MB flights CSV";
  cmd += " > " + shell_quote(dir.path() + "/check.log") + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << slurp(dir.path() + "/check.log");
}

// Blocks are written in input order whatever the parser threads; a second transform into the
// same directory is refused.
TEST(ExampleShardsE2E, TheShardsDoNotDependOnTheThreadCount) {
  TempDir dir;
  analyze(dir, flights() + "/data/train-*.csv", "state.pbtxt");
  ASSERT_EQ(transform(dir, {"--output", "one", "--shards", "3", "--threads", "1"}).exit_code, 0);
  ASSERT_EQ(transform(dir, {"--output", "two", "--shards", "3", "--threads", "2"}).exit_code, 0);
  for (const char* shard : {"examples-00000.kex", "examples-00001.kex", "examples-00002.kex"}) {
    const std::string a = slurp(dir.path() + "/one/" + shard), b = slurp(dir.path() + "/two/" + shard);
    EXPECT_GT(a.size(), 1000000u) << shard;
    EXPECT_TRUE(a == b) << shard << " differs between 1 and 2 threads";
  }
  RunResult again = transform(dir, {"--output", "one"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("already holds example shards"), std::string::npos) << again.err;
}

// Training on shards gives the run CSV gives; shards of another analysis are refused by name.
TEST(ExampleShardsE2E, TrainingReadsShardsOfItsOwnAnalysisOnly) {
  TempDir dir;
  analyze(dir, flights() + "/data/train-*.csv", "state.pbtxt");
  analyze(dir, flights() + "/data/train-00001.csv", "other.pbtxt");
  ASSERT_EQ(transform(dir, {"--output", "shards"}).exit_code, 0);
  auto train = [&](const std::string& out, const std::string& state, const std::string& files) {
    return run_kiln({"train", "--config", flights() + "/linear.pbtxt", "--set", "epochs=1", "--set",
                     "max_steps=60", "--set", "output_dir=" + dir.path() + "/" + out, "--set", "data.csv.transform_state=" + state,
                     "--set", "data.csv.train_files=" + files},
                    dir.path());
  };
  RunResult csv = train("csv", dir.path() + "/state.pbtxt", flights() + "/data/train-*.csv");
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  RunResult kex = train("kex", dir.path() + "/state.pbtxt", dir.path() + "/shards/*.kex");
  ASSERT_EQ(kex.exit_code, 0) << kex.err;
  auto eval_line = [](const std::string& out) {
    const size_t at = out.find("eval rmse");
    return at == std::string::npos ? std::string("(no eval line)") : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_EQ(eval_line(csv.out + csv.err), eval_line(kex.out + kex.err));
  EXPECT_NE(eval_line(kex.out + kex.err), "(no eval line)");
  RunResult other = train("other", dir.path() + "/other.pbtxt", dir.path() + "/shards/*.kex");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.err.find("examples-00000.kex was transformed with another analysis"), std::string::npos) << other.err;
}

// The number after the next `"key":` from `at` in `text`; `at` moves past it.
int64_t number_after(const std::string& text, size_t& at, const std::string& key) {
  at = text.find("\"" + key + "\":", at);
  if (at == std::string::npos) {
    ADD_FAILURE() << key << " not found";
    return -1;
  }
  at += key.size() + 3;
  return std::stoll(text.substr(at, 20));
}

// A flipped byte in one block of a shard: training fails naming the file and the block; with
// csv.max_bad_rows raised to the block's rows it skips the block, says so, and reports its rows
// left out; one row less and it fails naming the setting.
TEST(ExampleShardsE2E, ACorruptBlockFailsTrainingOrIsSkippedWithinTheBudget) {
  TempDir dir;
  analyze(dir, flights() + "/data/train-*.csv", "state.pbtxt");
  ASSERT_EQ(transform(dir, {"--output", "shards", "--shards", "1"}).exit_code, 0);
  const std::string shard = dir.path() + "/shards/examples-00000.kex";
  const std::string bytes = slurp(shard);
  size_t at = bytes.rfind("{\"format\":\"kiln-example-shard\"");
  ASSERT_NE(at, std::string::npos);
  const int64_t total = number_after(bytes, at, "rows");
  at = bytes.find("\"blocks\":[", at);
  ASSERT_NE(at, std::string::npos);
  const int64_t offset = number_after(bytes, at, "offset"), block_bytes = number_after(bytes, at, "bytes");
  const int64_t rows = number_after(bytes, at, "rows");
  ASSERT_EQ(offset, 8);
  ASSERT_GT(rows, 1000);
  ASSERT_LT(rows, total) << "the flights shard holds several blocks";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(offset + 1000);
    f.put(static_cast<char>(bytes[static_cast<size_t>(offset) + 1000] ^ 0x40));
  }
  // The flights spec with an error budget (csv.max_bad_rows is not part of the analysis).
  auto train = [&](int64_t max_bad_rows) {
    const std::string spec = dir.file("spec" + std::to_string(max_bad_rows) + ".pbtxt",
                                      slurp(flights() + "/feature_spec.pbtxt") +
                                          "\ncsv { max_bad_rows: " + std::to_string(max_bad_rows) + " }\n");
    return run_kiln({"train", "--config", flights() + "/linear.pbtxt", "--set", "epochs=1", "--set", "max_steps=20",
                     "--set", "output_dir=" + dir.path() + "/run" + std::to_string(max_bad_rows), "--set",
                     "data.csv.transform_state=" + dir.path() + "/state.pbtxt", "--set",
                     "data.csv.feature_spec_file=" + spec, "--set", "data.csv.train_files=" + shard},
                    dir.path());
  };
  const std::string block = shard + ": block 0 (bytes 8.." + std::to_string(offset + block_bytes) + ", " +
                            std::to_string(rows) + " rows): checksum mismatch";
  RunResult strict = train(0);
  EXPECT_NE(strict.exit_code, 0);
  EXPECT_NE(strict.err.find(block), std::string::npos) << strict.err;
  EXPECT_NE(strict.err.find("csv.max_bad_rows is 0"), std::string::npos) << strict.err;

  RunResult short_by_one = train(rows - 1);
  EXPECT_NE(short_by_one.exit_code, 0);
  EXPECT_NE(short_by_one.err.find(block), std::string::npos) << short_by_one.err;
  EXPECT_NE(short_by_one.err.find("more than " + std::to_string(rows - 1) + " malformed rows; raise csv.max_bad_rows"),
            std::string::npos)
      << short_by_one.err;

  RunResult lenient = train(rows);
  ASSERT_EQ(lenient.exit_code, 0) << lenient.err;
  EXPECT_NE(lenient.err.find("kiln: warning: " + block), std::string::npos) << lenient.err;
  const std::string report = "train data: " + std::to_string(total - rows) + " rows used, " + std::to_string(rows) +
                             " rows left out: " + std::to_string(rows) + " row in a corrupt block\n";
  EXPECT_NE(lenient.err.find(report), std::string::npos) << "expected: " << report << lenient.err;
}


// Export's identity check needs raw rows: a model trained on shards exports with a CSV eval file,
// and without one the error says what to name.
TEST(ExampleShardsE2E, ExportOfAModelTrainedOnShardsNeedsACsvFile) {
  TempDir dir;
  analyze(dir, flights() + "/data/train-*.csv", "state.pbtxt");
  ASSERT_EQ(transform(dir, {"--output", "shards", "--shards", "2"}).exit_code, 0);
  auto verb = [&](const std::string& v, const std::string& eval, std::vector<std::string> extra) {
    std::vector<std::string> a{v, "--config", flights() + "/linear.pbtxt", "--set", "max_steps=20", "--set",
                               "output_dir=" + dir.path() + "/run", "--set", "data.csv.transform_state=" + dir.path() +
                               "/state.pbtxt", "--set", "data.csv.train_files=" + dir.path() + "/shards/*.kex", "--set",
                               "data.csv.eval_files=" + eval};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_kiln(a, dir.path());
  };
  ASSERT_EQ(verb("train", dir.path() + "/shards/examples-00000.kex", {}).exit_code, 0);
  RunResult no_csv = verb("export", dir.path() + "/shards/examples-00000.kex", {"--model_base_path", "models/a"});
  EXPECT_NE(no_csv.exit_code, 0);
  EXPECT_NE(no_csv.err.find("name a CSV file of the same data, e.g. --set data.csv.eval_files=eval.csv"),
            std::string::npos)
      << no_csv.err;
  RunResult with_csv = verb("export", flights() + "/data/eval.csv", {"--model_base_path", "models/b"});
  ASSERT_EQ(with_csv.exit_code, 0) << with_csv.err;
  EXPECT_NE(with_csv.out.find("rows bit-identical"), std::string::npos) << with_csv.out;
}

// The training losses a run printed (progress lines "step N/M epoch E loss L ..."), by step.
std::map<int64_t, std::string> logged_losses(const std::string& log) {
  std::map<int64_t, std::string> losses;
  size_t at = 0;
  while ((at = log.find("step ", at)) != std::string::npos) {
    const size_t end = log.find('\n', at);
    const std::string line = log.substr(at, end - at);
    at = end;
    long long step = 0, total = 0, epoch = 0;
    char loss[64];
    if (std::sscanf(line.c_str(), "step %lld/%lld epoch %lld loss %63s", &step, &total, &epoch, loss) == 4)
      losses[step] = loss;
  }
  return losses;
}

// Streamed training data (data.csv.reading STREAMING, windows far smaller than the data): a kill
// -9 in the middle of an epoch resumes at the same example, so the resumed run logs the losses and
// ends with the weights of a run that was never interrupted.
void kill_mid_epoch_and_resume(const TempDir& dir, const std::string& train_files, const std::string& streaming,
                               const std::vector<std::string>& extra = {}) {
  auto args = [&](const std::string& out) {
    std::vector<std::string> a{
        "train", "--config", flights() + "/wide_deep.pbtxt", "--set", "data.csv.train_files=" + train_files,
        "--set", "data.csv.transform_state=" + dir.path() + "/state.pbtxt", "--set",
        "data.csv.feature_spec_file=" + flights() + "/feature_spec.pbtxt", "--set", "data.csv.reading=STREAMING",
        "--set", "data.csv.shuffle_buffer=30000", "--set", "max_steps=1500", "--set", "checkpoint.every_steps=100",
        "--set", "checkpoint.keep_last=30", "--set", "log_every_steps=50", "--set", "threads=1", "--set",
        "output_dir=" + dir.path() + "/" + out};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  RunResult whole = run_kiln(args("whole"), dir.path());
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_NE(whole.err.find("training data: streaming 294617 rows from " + streaming + ", a window of 30208 examples"),
            std::string::npos)
      << whole.err;

  // Killed as soon as its step-300 checkpoint appears: in the first epoch (1151 batches), far
  // from its end.
  const std::string log = dir.path() + "/killed.log";
  const pid_t pid = spawn_kiln(args("killed"), dir.path(), log);
  const std::string third = dir.path() + "/killed/checkpoints/ckpt-0000000300.kckpt";
  const std::string last = dir.path() + "/killed/checkpoints/ckpt-0000001500.kckpt";
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 60000 && !fs::exists(third); ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  ASSERT_FALSE(exited) << slurp(log);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  waitpid(pid, &status, 0);
  ASSERT_FALSE(fs::exists(last)) << "the run ended before it was killed";
  RunResult resumed = run_kiln(args("killed"), dir.path());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  long long from = 0;
  const size_t at = resumed.err.find("resumed from ");
  ASSERT_NE(at, std::string::npos) << resumed.err;
  ASSERT_EQ(std::sscanf(resumed.err.c_str() + resumed.err.find(" at step ", at), " at step %lld", &from), 1);
  EXPECT_GE(from, 300);
  EXPECT_LT(from, 1151) << "resumed in the first epoch";
  const std::map<int64_t, std::string> a = logged_losses(whole.err), b = logged_losses(resumed.err);
  ASSERT_FALSE(b.empty()) << resumed.err;
  EXPECT_GT(b.begin()->first, from);
  for (const auto& [step, loss] : b) EXPECT_EQ(a.count(step) ? a.at(step) : "(not logged)", loss) << "step " << step;
  const io::CheckpointFile x = io::read_checkpoint_file(dir.path() + "/whole/checkpoints/ckpt-0000001500.kckpt");
  const io::CheckpointFile y = io::read_checkpoint_file(last);
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (const io::NamedTensor& t : x.tensors) {
    const Tensor* u = y.find(t.name);
    ASSERT_TRUE(u) << t.name;
    EXPECT_TRUE(u->bytes() == t.tensor.bytes() && std::memcmp(u->raw(), t.tensor.raw(), t.tensor.bytes()) == 0)
        << t.name << " differs between the resumed and the uninterrupted run";
  }
}

TEST(ExampleShardsE2E, AStreamedRunKilledMidEpochResumesAtTheSameExample) {
  TempDir dir;
  analyze(dir, flights() + "/data/train-*.csv", "state.pbtxt");
  ASSERT_EQ(transform(dir, {"--output", "shards", "--shards", "3"}).exit_code, 0);
  kill_mid_epoch_and_resume(dir, dir.path() + "/shards/*.kex", "3 example shards");
}

// The same for CSV transformed as it is read (a counting pass first; the resume parses the
// epoch's rows before the position again), with two parse threads: each run ends while the
// next epoch's reader waits to hand over a window.
TEST(ExampleShardsE2E, AStreamedCsvRunKilledMidEpochResumesAtTheSameExample) {
  TempDir dir;
  analyze(dir, flights() + "/data/train-*.csv", "state.pbtxt");
  kill_mid_epoch_and_resume(dir, flights() + "/data/train-*.csv", "7 CSV files (transformed as read)",
                            {"--set", "data.csv.threads=2"});
}

}  // namespace
}  // namespace kiln::e2e
