// End-to-end tests of `kiln train` and `kiln evaluate` on real Fashion-MNIST data (Debian package
// dataset-fashion-mnist, installed by scripts/setup.sh).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "core/device.h"
#include "io/checkpoint_file.h"
#include "kiln_process.h"

namespace kiln::e2e {
namespace {

namespace fs = std::filesystem;

const char* kData = R"(
data { idx {
  train_images: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
  train_labels: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
  eval_images: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
  eval_labels: "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
  max_train_examples: 3000
  max_eval_examples: 1000
} }
)";

const char* kMlp = R"(
model {
  inputs { name: "image" shape: [28, 28, 1] }
  layers { flatten {} }
  layers { dense { units: 64 activation: RELU } }
  layers { dense { units: 10 } }
  head { type: MULTICLASS num_classes: 10 }
}
optimizer { type: ADAM learning_rate: 0.002 }
batch_size: 64
threads: 2
log_every_steps: 20
)";

// A small CNN with every stateful piece: batch norm (running statistics), dropout (Philox
// stream per step), Adam moments, cosine schedule.
const char* kCnn = R"(
model {
  inputs { name: "image" shape: [28, 28, 1] }
  layers { conv2d { filters: 8 kernel: 3 stride: 2 use_bias: false } }
  layers { batch_norm {} }
  layers { activation { type: RELU } }
  layers { max_pool2d {} }
  layers { flatten {} }
  layers { dropout { rate: 0.3 } }
  layers { dense { units: 10 } }
  head { type: MULTICLASS num_classes: 10 }
}
optimizer { type: ADAMW learning_rate: 0.003 weight_decay: 0.01 }
lr_schedule { type: COSINE warmup_steps: 5 }
batch_size: 32
threads: 2
log_every_steps: 10
)";

class TrainE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fashion_mnist_installed()) << "dataset-fashion-mnist is missing: run scripts/setup.sh";
  }
};

std::string dense_params(const std::string& ckpt) {
  io::CheckpointFile f = io::read_checkpoint_file(ckpt);
  std::string bytes;
  for (const auto& t : f.tensors)
    if (t.name.rfind("params/", 0) == 0)
      bytes.append(static_cast<const char*>(t.tensor.raw()), t.tensor.bytes());
  return bytes;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

std::vector<std::string> checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CliE2E, HelpAndVersion) {
  TempDir dir;
  RunResult help = run_kiln({"--help"}, dir.path());
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("train"), std::string::npos);
  EXPECT_NE(help.out.find("evaluate"), std::string::npos);
  RunResult version = run_kiln({"--version"}, dir.path());
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.out.find("kiln "), std::string::npos);
  RunResult train_help = run_kiln({"train", "--help"}, dir.path());
  EXPECT_EQ(train_help.exit_code, 0);
  EXPECT_NE(train_help.out.find("--set"), std::string::npos);
  RunResult none = run_kiln({}, dir.path());
  EXPECT_NE(none.exit_code, 0);
  // Every bad command line exits 2 (docs/cli.md), whatever CLI11's own code for the mistake.
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"train", "--no-such-flag"}, {"train"}, {"analyze", "--drift_threshold", "2"},
        {"transform", "--state", "s", "--data", "d", "--output", "o", "--shards", "-1"}}) {
    RunResult r = run_kiln(bad, dir.path());
    EXPECT_EQ(r.exit_code, 2) << bad[0] << " " << (bad.size() > 1 ? bad[1] : "") << ": " << r.err;
  }
}

// Each bad config fails before training with one line that names the field.
TEST_F(TrainE2E, BadConfigsFailWithTheFieldNamed) {
  TempDir dir;
  struct Case {
    std::string name, config, expect;
    std::vector<std::string> extra = {};
  };
  std::vector<Case> cases = {
      {"unknown_field", std::string(kData) + kMlp + "epochz: 3\n", "no field named \"epochz\". (did you mean \"epochs\"?)"},
      {"misspelled_message", std::string(kData) + kMlp + "optimzer { type: SGD }\n", "(did you mean \"optimizer\"?)"},
      {"misspelled_enum", std::string(kData) + replace(kMlp, "type: ADAM", "type: ADAMM"), "(did you mean \"ADAM\"?)"},
      {"set_misspelled", std::string(kData) + kMlp, "has no field 'epoch' (did you mean 'epochs'?)", {"--set", "epoch=2"}},
      {"set_enum_case", std::string(kData) + kMlp, "(did you mean 'SGD'?)", {"--set", "optimizer.type=sgd"}},
      {"value_blames_its_field", std::string(kData) + kMlp + "checkpoint { keep_last: 2 every_steps: \"x\" }\n",
       "(field 'every_steps')"},
      {"wrong_type", std::string(kData) + kMlp + "batch_size: \"many\"\n", "batch_size"},
      {"bad_enum", std::string(kData) + replace(kMlp, "type: ADAM", "type: RMSPROP"), "RMSPROP"},
      {"missing_data",
       std::string(kMlp) + "data { idx { train_images: \"/nonexistent/train.gz\" train_labels: \"/nonexistent/l.gz\" } }",
       "data.idx.train_images: file not found: /nonexistent/train.gz"},
      {"impossible_shape",
       std::string(kData) +
           "model { inputs { name: 'image' shape: [28, 28, 1] } layers { conv2d { filters: 4 kernel: 40 padding: VALID } } "
           "layers { flatten {} } layers { dense { units: 10 } } head { num_classes: 10 } }",
       "model.layers[0] (conv2d_0): conv2d kernel 40x40 does not fit input [28, 28, 1]"},
      {"input_shape_mismatch",
       std::string(kData) +
           "model { inputs { name: 'image' shape: [32, 32, 3] } layers { flatten {} } layers { dense { units: 10 } } "
           "head { num_classes: 10 } }",
       "model.inputs[0].shape is [32, 32, 3]"},
      {"head_mismatch", std::string(kData) + replace(kMlp, "num_classes: 10", "num_classes: 7"),
       "model output has 10 units but model.head.num_classes is 7"},
      {"set_unknown", std::string(kData) + kMlp, "has no field 'nope'", {"--set", "optimizer.nope=1"}},
      {"set_wrong_type", std::string(kData) + kMlp, "--set epochs: 'x' is not a valid int64", {"--set", "epochs=x"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string cfg = dir.file(c.name + ".pbtxt", c.config + "output_dir: 'out_" + c.name + "'\n");
    std::vector<std::string> args{"train", "--config", cfg};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    RunResult r = run_kiln(args, dir.path());
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line expected: " << r.err;
    EXPECT_FALSE(fs::exists(dir.path() + "/out_" + c.name + "/checkpoints")) << "work started before validation";
  }
}

// A rerun of a finished training says so; a checkpoint from another model says how to start
// afresh instead of failing on a tensor shape.
TEST_F(TrainE2E, RerunAndMismatchedCheckpointSayWhatToDo) {
  TempDir dir;
  std::string cfg = dir.file("mlp.pbtxt", std::string(kData) + kMlp + "max_steps: 4\noutput_dir: 'out'\n");
  RunResult r = run_kiln({"train", "--config", cfg}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  RunResult again = run_kiln({"train", "--config", cfg}, dir.path());
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("already trained: out holds the final checkpoint, step 4"), std::string::npos) << again.out;
  EXPECT_EQ(again.out.find("examples/s"), std::string::npos) << again.out;
  RunResult other = run_kiln({"train", "--config", cfg, "--set", "model.layers[1].dense.units=32", "--set", "max_steps=8"},
                             dir.path());
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("does not fit this model"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("set a new output_dir or resume: false"), std::string::npos) << other.err;
  EXPECT_EQ(std::count(other.err.begin(), other.err.end(), '\n'), 1) << other.err;
  RunResult fresh = run_kiln({"train", "--config", cfg, "--set", "model.layers[1].dense.units=32", "--set", "resume=false",
                              "--set", "output_dir=fresh"},
                             dir.path());
  EXPECT_EQ(fresh.exit_code, 0) << fresh.err;
}

// The device is decided before any data is read (the data files here do not exist): CUDA without
// a GPU says so and how to choose another; devices the verbs do not run on yet say that.
TEST_F(TrainE2E, TheDeviceIsChosenBeforeAnyDataIsRead) {
  TempDir dir;
  std::string cfg = dir.file("mlp.pbtxt", "data { csv { train_files: 'missing.csv' feature_spec_file: 'missing.pbtxt' } }\n" +
                                              std::string(kMlp) + "output_dir: 'out'\n");
  const std::string pick = "set device: CPU in the config or pass --set device=CPU";
  if (cuda_device_count() == 0) {
    for (std::string verb : {"train", "evaluate", "export"}) {
      std::vector<std::string> args = {verb, "--config", cfg, "--set", "device=CUDA"};
      if (verb == "export") args.insert(args.end(), {"--model_base_path", "m"});
      RunResult r = run_kiln(args, dir.path());
      EXPECT_EQ(r.exit_code, 1) << verb;
      EXPECT_NE(r.err.find("device: CUDA, but no CUDA device is visible to this process ("), std::string::npos) << r.err;
      EXPECT_NE(r.err.find(pick), std::string::npos) << r.err;
    }
    RunResult p = run_kiln({"predict", "--model", "m", "--input", "in.csv", "--output", "o", "--device", "cuda:1"}, dir.path());
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_NE(p.err.find("no CUDA device is visible"), std::string::npos) << p.err;
  }
  RunResult sim = run_kiln({"train", "--config", cfg, "--set", "device=SIM"}, dir.path());
  EXPECT_EQ(sim.exit_code, 1);
  // The sim device is there: the run gets as far as the data, which is missing.
  EXPECT_NE(sim.err.find("missing"), std::string::npos) << sim.err;
  RunResult serve = run_kiln({"serve", "--model_base_path", "m", "--device", "sim:9"}, dir.path());
  EXPECT_EQ(serve.exit_code, 1);
  EXPECT_NE(serve.err.find("device_index 9: there are 8 simulated devices"), std::string::npos) << serve.err;
  RunResult bad = run_kiln({"serve", "--model_base_path", "m", "--device", "tpu"}, dir.path());
  EXPECT_NE(bad.err.find("unknown device 'tpu': choose cpu, cuda or sim"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(dir.path() + "/out"));
}

// A MULTICLASS head left without num_classes (and a last dense layer without units) takes the
// number of classes from the analyzed label vocabulary.
TEST_F(TrainE2E, NumberOfClassesComesFromTheLabelVocabulary) {
  TempDir dir;
  std::string csv = "x,kind\n";
  for (int i = 0; i < 90; ++i) csv += std::to_string(i % 3) + "." + std::to_string(i % 7) + "," + "abc"[i % 3] + "\n";
  dir.file("d.csv", csv);
  dir.file("spec.pbtxt", "features { name: 'x' numeric {} } label { column: 'kind' type: MULTICLASS }");
  std::string cfg = dir.file(
      "c.pbtxt",
      "data { csv { train_files: 'd.csv' eval_files: 'd.csv' feature_spec_file: 'spec.pbtxt' } }\n"
      "model { layers { dense { units: 8 activation: RELU } } layers { dense {} } head { type: MULTICLASS } }\n"
      "max_steps: 5 batch_size: 16 output_dir: 'out'\n");
  RunResult r = run_kiln({"train", "--config", cfg}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("eval accuracy"), std::string::npos) << r.out;
}

TEST_F(TrainE2E, JsonConfigIsAccepted) {
  TempDir dir;
  std::string cfg = dir.file("c.json", R"({"data": {"idx": {
      "trainImages": "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
      "trainLabels": "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz",
      "maxTrainExamples": 256}},
    "model": {"inputs": [{"name": "image", "shape": [28, 28, 1]}],
              "layers": [{"flatten": {}}, {"dense": {"units": 10}}],
              "head": {"numClasses": 10}},
    "maxSteps": 4, "batchSize": 64, "outputDir": "out"})");
  RunResult r = run_kiln({"train", "--config", cfg}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("trained 4 steps"), std::string::npos) << r.out;
  std::string bad = dir.file("bad.json", R"({"batchSize": "x"})");
  r = run_kiln({"train", "--config", bad}, dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("batch_size"), std::string::npos) << r.err;
}

TEST_F(TrainE2E, MlpLearnsAndEvaluateAgrees) {
  TempDir dir;
  std::string cfg = dir.file("mlp.pbtxt", std::string(kData) + kMlp + "epochs: 3\noutput_dir: 'out'\ncheckpoint { every_steps: 20 }\n");
  RunResult r = run_kiln({"train", "--config", cfg}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Plain log lines (stderr is not a terminal) and eval lines.
  EXPECT_NE(r.err.find("step 20/"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("eval at step"), std::string::npos) << r.err;
  size_t at = r.out.find("eval accuracy ");
  ASSERT_NE(at, std::string::npos) << r.out;
  double accuracy = std::stod(r.out.substr(at + 14));
  EXPECT_GT(accuracy, 0.70);  // 3 epochs over 3000 images; chance is 0.10
  RunResult e = run_kiln({"evaluate", "--config", cfg}, dir.path());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  at = e.out.find("accuracy ");
  ASSERT_NE(at, std::string::npos) << e.out;
  EXPECT_DOUBLE_EQ(std::stod(e.out.substr(at + 9)), accuracy);
  // keep_last (default 3) prunes the older of the 8 checkpoints (steps 20, 40, ..., 140 and
  // the last, 141); no temporary files remain.
  auto files = checkpoints(dir.path() + "/out/checkpoints");
  EXPECT_EQ(files.size(), 3u);
  for (const auto& f : files) EXPECT_TRUE(f.ends_with(".kckpt")) << f;
  ASSERT_FALSE(files.empty());
  EXPECT_TRUE(files.back().ends_with("ckpt-0000000141.kckpt")) << files.back();
}

// The steps of the checkpoints in dir, in order.
std::vector<int> checkpoint_steps(const std::string& dir) {
  std::vector<int> steps;
  for (const auto& f : checkpoints(dir)) {
    std::string name = fs::path(f).filename().string();
    if (name.rfind("ckpt-", 0) == 0 && name.ends_with(".kckpt")) steps.push_back(std::stoi(name.substr(5)));
  }
  return steps;
}

// The steps of the "eval at step N" lines in a run's stderr.
std::vector<int> eval_steps(const std::string& err) {
  std::vector<int> steps;
  const std::string marker = "eval at step ";
  for (size_t at = err.find(marker); at != std::string::npos; at = err.find(marker, at + 1))
    steps.push_back(std::stoi(err.substr(at + marker.size())));
  return steps;
}

// Checkpoints and evaluations follow the config exactly. 640 examples in batches of 64: 10
// steps an epoch, 4 epochs. By default a short run writes one checkpoint, at the end, not one
// per epoch; evaluation runs after each epoch.
TEST_F(TrainE2E, CheckpointAndEvalCadenceFollowTheConfig) {
  TempDir dir;
  std::string cfg = dir.file("mlp.pbtxt", std::string(kData) + kMlp + "epochs: 4\ncheckpoint { keep_last: 100 }\n");
  struct Case {
    std::string name;
    std::vector<std::string> set;
    std::vector<int> checkpoints, evals;
  };
  const std::vector<int> epochs{10, 20, 30, 40};
  std::vector<Case> cases = {
      {"default", {}, {40}, epochs},
      {"every_epochs", {"checkpoint.every_epochs=2"}, {20, 40}, epochs},
      {"every_steps", {"checkpoint.every_steps=15"}, {15, 30, 40}, epochs},
      {"steps_and_epochs", {"checkpoint.every_steps=15", "checkpoint.every_epochs=2"}, {15, 20, 30, 40}, epochs},
      // Time-based: a checkpoint whenever this long has passed since the last, i.e. every step.
      {"every_seconds", {"checkpoint.every_seconds=1e-9", "epochs=1"}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {10}},
      {"end_only", {"checkpoint.every_seconds=0"}, {40}, epochs},
      {"eval_every_steps", {"eval_every_steps=15"}, {40}, {15, 30, 40}},
      {"eval_every_steps_max_steps", {"eval_every_steps=7", "max_steps=25"}, {25}, {7, 14, 21, 25}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> args{"train", "--config", cfg, "--set", "output_dir=" + c.name, "--set",
                                  "data.idx.max_train_examples=640", "--set", "data.idx.max_eval_examples=200"};
    for (const std::string& s : c.set) args.insert(args.end(), {"--set", s});
    RunResult r = run_kiln(args, dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(checkpoint_steps(dir.path() + "/" + c.name + "/checkpoints"), c.checkpoints);
    EXPECT_EQ(eval_steps(r.err), c.evals) << r.err;
  }
  // Out of range: one line naming the field, before any work.
  const std::vector<std::string> bad_settings{"checkpoint.every_steps=-1", "checkpoint.every_epochs=-2",
                                              "checkpoint.every_seconds=-1", "eval_every_steps=-5"};
  for (const std::string& bad : bad_settings) {
    RunResult r = run_kiln({"train", "--config", cfg, "--set", "output_dir=bad", "--set", bad}, dir.path());
    EXPECT_EQ(r.exit_code, 1) << bad;
    EXPECT_NE(r.err.find(bad.substr(0, bad.find('=')) + " must be >= 0"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir.path() + "/bad/checkpoints"));
  }
}

TEST_F(TrainE2E, SameSeedAndThreadsGiveBitIdenticalWeights) {
  TempDir dir;
  std::string base = std::string(kData) + kCnn + "max_steps: 40\n";
  std::string a = dir.file("a.pbtxt", base + "output_dir: 'a'\n");
  std::string b = dir.file("b.pbtxt", base + "output_dir: 'b'\n");
  ASSERT_EQ(run_kiln({"train", "--config", a}, dir.path()).exit_code, 0);
  ASSERT_EQ(run_kiln({"train", "--config", b}, dir.path()).exit_code, 0);
  auto ca = checkpoints(dir.path() + "/a/checkpoints"), cb = checkpoints(dir.path() + "/b/checkpoints");
  ASSERT_FALSE(ca.empty());
  ASSERT_FALSE(cb.empty());
  std::string wa = dense_params(ca.back()), wb = dense_params(cb.back());
  ASSERT_GT(wa.size(), 0u);
  EXPECT_TRUE(wa == wb) << "weights differ between identical runs";
  // A different seed really changes them (the comparison above can fail).
  std::string c = dir.file("c.pbtxt", base + "output_dir: 'c'\nseed: 2\n");
  ASSERT_EQ(run_kiln({"train", "--config", c}, dir.path()).exit_code, 0);
  EXPECT_FALSE(wa == dense_params(checkpoints(dir.path() + "/c/checkpoints").back()));
}

TEST_F(TrainE2E, ResumeAfterKill9EqualsUninterruptedRun) {
  TempDir dir;
  std::string base = std::string(kData) + kCnn + "max_steps: 120\ncheckpoint { every_steps: 10 keep_last: 50 }\n";
  std::string full = dir.file("full.pbtxt", base + "output_dir: 'full'\n");
  ASSERT_EQ(run_kiln({"train", "--config", full}, dir.path()).exit_code, 0);

  std::string cfg = dir.file("killed.pbtxt", base + "output_dir: 'killed'\n");
  pid_t pid = spawn_kiln({"train", "--config", cfg}, dir.path());
  ASSERT_GT(pid, 0);
  // Kill -9 as soon as the third checkpoint exists: mid-run, at an arbitrary point of a step.
  std::string ckdir = dir.path() + "/killed/checkpoints";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (checkpoints(ckdir).size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  // Every checkpoint on disk is whole: each reads back with valid checksums. A write cut short
  // can only have left a hidden temporary file, never a truncated ckpt-*.kckpt.
  int whole = 0;
  for (const auto& f : checkpoints(ckdir)) {
    if (fs::path(f).filename().string().rfind(".ckpt-", 0) == 0) continue;
    EXPECT_TRUE(f.ends_with(".kckpt")) << "stray file " << f;
    EXPECT_NO_THROW(io::read_checkpoint_file(f)) << f;
    ++whole;
  }
  ASSERT_GE(whole, 2);
  RunResult resumed = run_kiln({"train", "--config", cfg}, dir.path());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resumed from"), std::string::npos) << resumed.err;
  // The resumed run swept away the killed run's temporary files.
  for (const auto& f : checkpoints(ckdir)) EXPECT_TRUE(f.ends_with(".kckpt") && f.find("/.") == std::string::npos) << f;
  std::string want = dense_params(checkpoints(dir.path() + "/full/checkpoints").back());
  std::string got = dense_params(checkpoints(ckdir).back());
  EXPECT_TRUE(want == got) << "resumed weights differ from the uninterrupted run";
}

TEST_F(TrainE2E, TensorBoardReadsTheEventFile) {
  const char* python = std::getenv("KILN_PYTHON");
  if (!python) GTEST_SKIP() << "KILN_PYTHON (a python with the tensorboard package) is not set; scripts/test.sh sets it";
  TempDir dir;
  std::string cfg = dir.file("mlp.pbtxt", std::string(kData) + kMlp + "epochs: 1\noutput_dir: 'out'\n");
  ASSERT_EQ(run_kiln({"train", "--config", cfg}, dir.path()).exit_code, 0);
  std::string script = source_dir() + "/tests/tools/read_tensorboard_events.py";
  std::string cmd = std::string(python) + " " + shell_quote(script) + " " + shell_quote(dir.path() + "/out/events") +
                    " train/loss train/learning_rate train/examples_per_sec eval/accuracy eval/loss > " +
                    shell_quote(dir.path() + "/tb.txt") + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::string out = slurp(dir.path() + "/tb.txt");
  ASSERT_EQ(rc, 0) << out;
  // 3000 examples / 64 = 47 steps, logged every 20 steps and at the end: 3 points.
  EXPECT_NE(out.find("train/loss 3 47"), std::string::npos) << out;
  EXPECT_NE(out.find("eval/accuracy 1 47"), std::string::npos) << out;
}

// Data paths in a config file are relative to the file, whatever the working directory; paths
// given with --set are relative to the working directory.
TEST(TrainCsvE2E, ConfigPathsAreRelativeToTheConfigFile) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/project/data");
  std::string csv = "x,y\n";
  for (int i = 0; i < 50; ++i) csv += std::to_string(i) + "," + std::to_string(2 * i) + "\n";
  dir.file("project/data/train.csv", csv);
  dir.file("project/spec.pbtxt", "features { name: 'x' numeric {} } label { column: 'y' }");
  dir.file("project/cfg.pbtxt",
           "data { csv { train_files: 'data/train.csv' feature_spec_file: 'spec.pbtxt' } }\n"
           "model { layers { dense { units: 1 } } head { type: REGRESSION } } max_steps: 2 batch_size: 8\n");
  RunResult r = run_kiln({"train", "--config", "project/cfg.pbtxt", "--set", "output_dir=out"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(slurp(dir.path() + "/out/transform_state.pbtxt").find("rows: 50"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/out/transform_state.pbtxt"));  // output_dir: the working directory's
  RunResult s = run_kiln({"train", "--config", "project/cfg.pbtxt", "--set", "output_dir=out2", "--set",
                          "data.csv.train_files=data/train.csv"},
                         dir.path());
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_NE(s.err.find("data/train.csv"), std::string::npos) << s.err;
}

// A regression data set with missing labels (issue 17): by default the rows without a label are
// skipped in analysis, training and evaluation, and every run says how many rows it left out and
// why; label_missing: ERROR makes them malformed rows, and the error names csv.max_bad_rows.
TEST(TrainCsvE2E, MissingLabelsAreSkippedAndReported) {
  TempDir dir;
  std::string train = "x,y\n", eval = "x,y\n";
  for (int i = 0; i < 200; ++i) train += std::to_string(i % 10) + "," + (i % 25 == 3 ? "" : std::to_string(2 * (i % 10) + 1)) + "\n";
  train += "abc,3\n";
  for (int i = 0; i < 20; ++i) eval += std::to_string(i % 10) + "," + (i % 10 == 0 ? "NA" : std::to_string(2 * (i % 10) + 1)) + "\n";
  dir.file("train.csv", train);
  dir.file("eval.csv", eval);
  dir.file("spec.pbtxt", "csv { max_bad_rows: 1 } features { name: 'x' numeric { scaling: Z_SCORE } } label { column: 'y' }");
  dir.file("cfg.pbtxt",
           "data { csv { train_files: 'train.csv' eval_files: 'eval.csv' feature_spec_file: 'spec.pbtxt' } }\n"
           "model { layers { name: 'out' inputs: 'dense' dense { units: 1 } } head { type: REGRESSION } }\n"
           "optimizer { type: ADAM learning_rate: 0.05 } epochs: 2 batch_size: 16 output_dir: 'out'\n");
  RunResult a = run_kiln({"analyze", "--config", "cfg.pbtxt", "--output", "state.pbtxt"}, dir.path());
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("rows 192, 9 rows left out: 1 feature 'x' not a number, 8 missing label"), std::string::npos) << a.out;
  RunResult t = run_kiln({"train", "--config", "cfg.pbtxt"}, dir.path());
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.err.find("train data: 192 rows used, 9 rows left out: 1 feature 'x' not a number, 8 missing label"),
            std::string::npos) << t.err;
  EXPECT_NE(t.err.find("eval data: 18 rows used, 2 rows left out: 2 missing label"), std::string::npos) << t.err;
  RunResult e = run_kiln({"evaluate", "--config", "cfg.pbtxt"}, dir.path());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.err.find("eval data: 18 rows used, 2 rows left out: 2 missing label"), std::string::npos) << e.err;
  // ERROR: a missing label is a malformed row; the budget of 1 is exceeded and the error says
  // which setting raises it.
  dir.file("spec.pbtxt", "csv { max_bad_rows: 1 } features { name: 'x' numeric {} } label { column: 'y' label_missing: ERROR }");
  RunResult strict = run_kiln({"analyze", "--config", "cfg.pbtxt", "--output", "strict.pbtxt"}, dir.path());
  EXPECT_EQ(strict.exit_code, 1);
  EXPECT_NE(strict.err.find("the label is missing (more than 1 malformed rows; raise csv.max_bad_rows"), std::string::npos)
      << strict.err;
}

}  // namespace
}  // namespace kiln::e2e

namespace kiln::e2e {
namespace {

// Training on CSV: the analysis runs by itself when no state exists, then train and evaluate.
TEST(TrainCsvE2E, BabyweightAnalyzesTrainsAndEvaluates) {
  std::string ex = source_dir() + "/examples/babyweight";
  ASSERT_TRUE(std::filesystem::exists(ex + "/data/eval.csv")) << "run examples/babyweight/fetch_data.sh first";
  TempDir dir;
  std::string cfg = ex + "/wide_deep.pbtxt";
  std::vector<std::string> paths = {"--set", "output_dir=out", "--set", "data.csv.train_files=" + ex + "/data/train-*.csv", "--set",
                                    "data.csv.eval_files=" + ex + "/data/eval.csv", "--set",
                                    "data.csv.feature_spec_file=" + ex + "/feature_spec.pbtxt"};
  std::vector<std::string> args = {"train", "--config", cfg, "--set", "epochs=5"};
  args.insert(args.end(), paths.begin(), paths.end());
  RunResult r = run_kiln(args, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/out/transform_state.pbtxt"));
  size_t at = r.out.find("eval rmse ");
  ASSERT_NE(at, std::string::npos) << r.out;
  double rmse = std::stod(r.out.substr(at + 10));
  EXPECT_LT(rmse, 1.6);  // pounds; the label's std is about 1.3, a zero predictor is off by ~7.5
  std::vector<std::string> eargs = {"evaluate", "--config", cfg};
  eargs.insert(eargs.end(), paths.begin(), paths.end());
  RunResult e = run_kiln(eargs, dir.path());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.out.find("rmse "), std::string::npos);
  // A spec naming a column the data lacks fails before any work, naming the column.
  std::string bad = dir.file("bad_spec.pbtxt", slurp(ex + "/feature_spec.pbtxt") + "\nfeatures { name: 'apgar' numeric {} }\n");
  std::vector<std::string> bargs = {"train", "--config", cfg};
  bargs.insert(bargs.end(), paths.begin(), paths.end());
  bargs.push_back("--set");
  bargs.push_back("output_dir=bad_out");
  bargs.push_back("--set");
  bargs.push_back("data.csv.feature_spec_file=" + bad);
  RunResult b = run_kiln(bargs, dir.path());
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_NE(b.err.find("has no column 'apgar'"), std::string::npos) << b.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/bad_out/checkpoints"));
}

}  // namespace
}  // namespace kiln::e2e

namespace kiln::e2e {
namespace {

// Early stopping: with min_delta 1.0 no evaluation after the first can improve accuracy, so the
// run stops after `patience` more evaluations, and says so.
TEST(TrainEarlyStoppingE2E, StopsAfterPatienceEvaluations) {
  ASSERT_TRUE(fashion_mnist_installed());
  TempDir dir;
  std::string cfg = dir.file("es.pbtxt", std::string(kData) + kMlp +
                                             "max_steps: 200\neval_every_steps: 5\noutput_dir: 'out'\n"
                                             "early_stopping { metric: 'accuracy' patience: 2 min_delta: 1.0 }\n");
  RunResult r = run_kiln({"train", "--config", cfg}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("trained 15 steps"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stopped early"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("early stopping: accuracy did not improve for 2 evaluations"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kiln::e2e
