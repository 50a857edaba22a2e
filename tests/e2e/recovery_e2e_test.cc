// Recovery from what a crash, a bad disk or a second process leaves behind (issue 18): a corrupt
// newest checkpoint, a resumed run's TensorBoard events, concurrent exports, deleted versions and
// the staging directories of killed exports. Real kiln processes on the babyweight example.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "kiln_process.h"

namespace kiln::e2e {
namespace {

namespace fs = std::filesystem;

std::string example() { return source_dir() + "/examples/babyweight"; }

// `kiln VERB` on the babyweight wide & deep config with output in out/, plus `extra` arguments.
std::vector<std::string> babyweight(const std::string& verb, std::vector<std::string> extra) {
  const std::string ex = example();
  std::vector<std::string> args = {verb, "--config", ex + "/wide_deep.pbtxt", "--set", "output_dir=out",
                                   "--set", "data.csv.train_files=" + ex + "/data/train-*.csv",
                                   "--set", "data.csv.eval_files=" + ex + "/data/eval.csv",
                                   "--set", "data.csv.feature_spec_file=" + ex + "/feature_spec.pbtxt"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// As kiln names it (relative to the run's directory), and its full path.
std::string ckpt_name(int step) {
  char name[64];
  std::snprintf(name, sizeof name, "out/checkpoints/ckpt-%010d.kckpt", step);
  return name;
}
std::string checkpoint(const TempDir& dir, int step) { return dir.path() + "/" + ckpt_name(step); }

// Flips one byte in the middle of a file: a checksum catches it.
void corrupt(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(0, std::ios::end);
  const std::streamoff middle = f.tellg() / 2;
  f.seekg(middle);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(middle);
  f.write(&c, 1);
}

class RecoveryE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(example() + "/data/eval.csv")) GTEST_SKIP() << "run examples/babyweight/fetch_data.sh first";
  }
};

TEST_F(RecoveryE2E, ACorruptNewestCheckpointFallsBackToTheNewestValidOne) {
  TempDir dir;
  RunResult t = run_kiln(babyweight("train", {"--set", "max_steps=30", "--set", "checkpoint.every_steps=10",
                                              "--set", "checkpoint.keep_last=5"}), dir.path());
  ASSERT_EQ(t.exit_code, 0) << t.err;
  corrupt(checkpoint(dir, 30));
  // evaluate: warns naming the bad file, keeps it as .corrupt, evaluates step 20.
  RunResult e = run_kiln(babyweight("evaluate", {}), dir.path());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.err.find("warning: checksum mismatch"), std::string::npos) << e.err;
  EXPECT_NE(e.err.find(ckpt_name(30)), std::string::npos) << e.err;
  EXPECT_NE(e.err.find("renamed to " + ckpt_name(30) + ".corrupt"), std::string::npos) << e.err;
  EXPECT_TRUE(fs::exists(checkpoint(dir, 30) + ".corrupt"));
  EXPECT_FALSE(fs::exists(checkpoint(dir, 30)));
  EXPECT_NE(e.out.find("rmse "), std::string::npos) << e.out;
  // export: the same with step 20 truncated: it exports step 10.
  fs::resize_file(checkpoint(dir, 20), fs::file_size(checkpoint(dir, 20)) / 2);
  RunResult x = run_kiln(babyweight("export", {"--model_base_path", "models/bw"}), dir.path());
  ASSERT_EQ(x.exit_code, 0) << x.err;
  EXPECT_NE(x.err.find(ckpt_name(20)), std::string::npos) << x.err;
  EXPECT_NE(x.out.find("(version 1, 10 training steps)"), std::string::npos) << x.out;
  EXPECT_TRUE(fs::exists(checkpoint(dir, 20) + ".corrupt"));
  // train: resumes from step 10 and goes on; the rejected files stay for inspection.
  RunResult r = run_kiln(babyweight("train", {"--set", "max_steps=40", "--set", "checkpoint.every_steps=10",
                                              "--set", "checkpoint.keep_last=5"}), dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resumed from " + ckpt_name(10) + " at step 10"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(checkpoint(dir, 40)));
  EXPECT_TRUE(fs::exists(checkpoint(dir, 30) + ".corrupt"));
  // A checkpoint named on the command line is not replaced by another one: its error stands.
  corrupt(checkpoint(dir, 40));
  RunResult named = run_kiln(babyweight("evaluate", {"--checkpoint", checkpoint(dir, 40)}), dir.path());
  EXPECT_EQ(named.exit_code, 1) << named.err;
  EXPECT_NE(named.err.find("checksum mismatch"), std::string::npos) << named.err;
}

TEST_F(RecoveryE2E, AResumedRunsTensorBoardStepsAppearOnce) {
  const char* python = std::getenv("KILN_PYTHON");
  if (!python) GTEST_SKIP() << "KILN_PYTHON (a python with the tensorboard package) is not set; scripts/test.sh sets it";
  TempDir dir;
  std::vector<std::string> run = {"--set", "max_steps=30", "--set", "checkpoint.every_steps=10", "--set",
                                  "checkpoint.keep_last=5", "--set", "log_every_steps=1"};
  RunResult first = run_kiln(babyweight("train", run), dir.path());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // As if it had been killed at step 30 with its last checkpoint at step 10: steps 11-30 are
  // logged, and the resumed run logs them again.
  fs::remove(checkpoint(dir, 30));
  fs::remove(checkpoint(dir, 20));
  RunResult second = run_kiln(babyweight("train", run), dir.path());
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("at step 10"), std::string::npos) << second.err;
  std::string cmd = std::string(python) + " " + shell_quote(source_dir() + "/tests/tools/read_tensorboard_events.py") +
                    " " + shell_quote(dir.path() + "/out/events") + " train/loss eval/rmse > " +
                    shell_quote(dir.path() + "/tb.txt") + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::string out = slurp(dir.path() + "/tb.txt");
  ASSERT_EQ(rc, 0) << out;
  // 30 steps, each once (without the purge: 50 points, 20 of them twice).
  EXPECT_NE(out.find("train/loss 30 30 "), std::string::npos) << out;
  size_t clean = 0;
  for (size_t at = out.find("duplicates=0"); at != std::string::npos; at = out.find("duplicates=0", at + 1)) ++clean;
  EXPECT_EQ(clean, 2u) << out;
}

TEST_F(RecoveryE2E, ConcurrentExportsTakeDistinctVersionsThatAreNeverReused) {
  TempDir dir;
  ASSERT_EQ(run_kiln(babyweight("train", {"--set", "max_steps=10"}), dir.path()).exit_code, 0);
  // Four exports at once: each publishes a version of its own.
  std::vector<pid_t> pids;
  for (int i = 0; i < 4; ++i) pids.push_back(spawn_kiln(babyweight("export", {"--model_base_path", "models/bw"}), dir.path()));
  for (pid_t p : pids) {
    int status = 0;
    waitpid(p, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(dir.path() + "/.spawn.log");
  }
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path() + "/models/bw")) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"1", "2", "3", "4", ".kiln_version_high_water", ".kiln_export.lock"}));
  // The newest version deleted: the next export does not reissue its number.
  fs::remove_all(dir.path() + "/models/bw/4");
  RunResult x = run_kiln(babyweight("export", {"--model_base_path", "models/bw"}), dir.path());
  ASSERT_EQ(x.exit_code, 0) << x.err;
  EXPECT_NE(x.out.find("(version 5,"), std::string::npos) << x.out;
  // Nor does --version.
  x = run_kiln(babyweight("export", {"--model_base_path", "models/bw", "--version", "4"}), dir.path());
  EXPECT_EQ(x.exit_code, 1) << x.err;
  EXPECT_NE(x.err.find("version 4 was already used in models/bw"), std::string::npos) << x.err;
  EXPECT_EQ(std::count(x.err.begin(), x.err.end(), '\n'), 1) << x.err;
  EXPECT_FALSE(fs::exists(dir.path() + "/models/bw/4"));
}

TEST_F(RecoveryE2E, StagingDirectoriesOfDeadExportsAreRemovedAndReported) {
  TempDir dir;
  ASSERT_EQ(run_kiln(babyweight("train", {"--set", "max_steps=10"}), dir.path()).exit_code, 0);
  // pid 4194305 is above any pid_max: that export is gone. This test process is alive.
  const std::string base = dir.path() + "/models/bw";
  const std::string dead = base + "/.tmp-1-4194305", live = base + "/.tmp-2-" + std::to_string(::getpid());
  fs::create_directories(dead);
  fs::create_directories(live);
  std::ofstream(dead + "/weights.kckpt") << "half";
  RunResult x = run_kiln(babyweight("export", {"--model_base_path", "models/bw"}), dir.path());
  ASSERT_EQ(x.exit_code, 0) << x.err;
  EXPECT_NE(x.err.find("removed models/bw/.tmp-1-4194305: the staging directory of an export whose process is gone"), std::string::npos)
      << x.err;
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(base + "/1/servable.pbtxt"));
}

}  // namespace
}  // namespace kiln::e2e
