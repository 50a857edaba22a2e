// kiln export --format onnx (runtime/onnx_export.h), end to end: the ONNX model, run by ONNX
// Runtime on inputs Kiln transformed, gives `kiln predict`'s outputs within 1e-5
// (tests/tools/onnx_check.py). Every layer kind and head is covered by one of the models.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/e2e/kiln_process.h"

namespace kiln::e2e {
namespace {

namespace fs = std::filesystem;

// Trains `config` briefly, exports it with model.onnx, and runs the check with `check` arguments.
void train_export_check(const TempDir& dir, const std::string& config, const std::vector<std::string>& sets,
                        const std::vector<std::string>& check) {
  const char* python = std::getenv("KILN_PYTHON");
  if (!python) GTEST_SKIP() << "KILN_PYTHON (a python with onnxruntime) is not set; scripts/test.sh sets it";
  std::vector<std::string> common{"--config", config, "--set", "output_dir=" + dir.path() + "/run"};
  for (const std::string& s : sets) common.insert(common.end(), {"--set", s});
  std::vector<std::string> args{"train"};
  args.insert(args.end(), common.begin(), common.end());
  RunResult t = run_kiln(args, dir.path());
  ASSERT_EQ(t.exit_code, 0) << t.err;
  args = {"export"};
  args.insert(args.end(), common.begin(), common.end());
  args.insert(args.end(), {"--model_base_path", dir.path() + "/models/m", "--format", "onnx"});
  RunResult x = run_kiln(args, dir.path());
  ASSERT_EQ(x.exit_code, 0) << x.err;
  EXPECT_NE(x.out.find("wrote " + dir.path() + "/models/m/1/model.onnx"), std::string::npos) << x.out;
  std::string cmd = shell_quote(python) + " " + shell_quote(source_dir() + "/tests/tools/onnx_check.py") + " --kiln " +
                    shell_quote(kiln_binary()) + " --model " + shell_quote(dir.path() + "/models/m/1") + " --work " +
                    shell_quote(dir.path() + "/check");
  for (const std::string& c : check) cmd += " " + shell_quote(c);
  cmd += " > " + shell_quote(dir.path() + "/check.log") + " 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string log = slurp(dir.path() + "/check.log");
  std::printf("%s", log.c_str());
  EXPECT_EQ(status, 0) << log;
}

// Wide & deep regression: dense input, eight embedding tables, concat, dense layers.
TEST(OnnxExportE2E, FlightsWideAndDeepMatchesKilnPredict) {
  const std::string flights = source_dir() + "/examples/flights";
  ASSERT_TRUE(fs::exists(flights + "/data/eval.csv")) << "run examples/flights/fetch_data.sh first";
  TempDir dir;
  train_export_check(dir, flights + "/wide_deep.pbtxt", {"max_steps=200"},
                     {"tabular", "--csv", flights + "/data/eval.csv", "--label", "arr_delay", "--state",
                      dir.path() + "/run/transform_state.pbtxt"});
}

// A binary classifier (sigmoid output, class ids from the logit's sign) with GELU, tanh and
// leaky ReLU layers.
TEST(OnnxExportE2E, BinaryClassifierMatchesKilnPredict) {
  TempDir dir;
  std::ofstream data(dir.path() + "/rows.csv");
  data << "token,x,y\n";
  for (int i = 0; i < 3000; ++i) {
    const double x = (i % 97) / 97.0 - 0.5;
    const int token = (i * 7) % 13;
    data << "t" << token << ',' << x << ',' << ((x + 0.1 * (token % 3) > 0.05) ? 1 : 0) << '\n';
  }
  data.close();
  const std::string config = dir.file("binary.pbtxt", R"(
data { csv { train_files: "rows.csv" feature_spec {
  features { name: "token" categorical { vocabulary {} } }
  features { name: "x" numeric { scaling: Z_SCORE } }
  label { column: "y" type: BINARY }
} } }
model {
  layers { name: "token_emb" inputs: "token" embedding { dim: 3 combiner: SUM } }
  layers { name: "all" inputs: ["dense", "token_emb"] concat {} }
  layers { name: "h1" dense { units: 16 activation: GELU } }
  layers { name: "h2" dense { units: 8 activation: TANH } }
  layers { name: "leaky" activation { type: LEAKY_RELU leaky_slope: 0.2 } }
  layers { name: "h3" dense { units: 8 activation: LEAKY_RELU use_bias: false } }
  layers { name: "logit" dense { units: 1 } }
  head { type: BINARY }
}
optimizer { learning_rate: 0.01 }
batch_size: 64
)");
  train_export_check(dir, config, {"max_steps=150"},
                     {"tabular", "--csv", dir.path() + "/rows.csv", "--label", "y", "--state",
                      dir.path() + "/run/transform_state.pbtxt"});
}

// The Fashion-MNIST CNN: conv, batch norm, ReLU, max pooling, flatten, dense, dropout; softmax.
TEST(OnnxExportE2E, FashionMnistCnnMatchesKilnPredict) {
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh)";
  TempDir dir;
  train_export_check(dir, source_dir() + "/examples/fashion_mnist/cnn.pbtxt",
                     {"max_steps=20", "data.idx.max_train_examples=3000", "data.idx.max_eval_examples=300"},
                     {"images", "--idx", "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "--rows", "300"});
}

// The other image layers: strided VALID convolution with GELU, SAME average pooling (padding
// not counted), a sigmoid convolution with a non-square kernel, global average pooling, and a
// flattened feature map (NHWC order again) concatenated with it.
TEST(OnnxExportE2E, OtherImageLayersMatchKilnPredict) {
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh)";
  TempDir dir;
  const std::string config = dir.file("cnn.pbtxt", R"(
data { idx {
  train_images: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
  train_labels: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
  eval_images: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
  eval_labels: "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
  max_train_examples: 2000 max_eval_examples: 300
} }
model {
  inputs { name: "image" shape: [28, 28, 1] }
  layers { name: "c1" conv2d { filters: 8 kernel: 5 stride: 2 padding: VALID activation: GELU } }
  layers { name: "avg" avg_pool2d { pool: 3 stride: 1 padding: SAME } }
  layers { name: "c2" inputs: "avg" conv2d { filters: 6 kernel: [3, 1] activation: SIGMOID } }
  layers { name: "bn" batch_norm {} }
  layers { name: "gap" global_avg_pool {} }
  layers { name: "flat" inputs: "avg" flatten {} }
  layers { name: "both" inputs: ["gap", "flat"] concat {} }
  layers { name: "logits" dense { units: 10 } }
  head { type: MULTICLASS num_classes: 10 }
}
batch_size: 64
)");
  train_export_check(dir, config, {"max_steps=15"},
                     {"images", "--idx", "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "--rows", "300"});
}

// A multi-valued feature (a bag of ids per example) cannot be an ONNX [batch] input: refused by name.
TEST(OnnxExportE2E, AMultiValuedFeatureIsRefusedByName) {
  TempDir dir;
  std::string spec = "features { name: \"tags\" categorical { vocabulary {} multi_value_delimiter: \"|\" } }\n"
                     "features { name: \"x\" numeric {} }\nlabel { column: \"y\" type: REGRESSION }\n";
  std::ofstream data(dir.path() + "/rows.csv");
  data << "tags,x,y\n";
  for (int i = 0; i < 300; ++i) data << "a|b" << (i % 3 ? "|c" : "") << ',' << i % 7 << ',' << i % 5 << '\n';
  data.close();
  const std::string config = dir.file("bag.pbtxt", "data { csv { train_files: \"rows.csv\" feature_spec { " + spec +
                                                       " } } }\nmodel { layers { name: \"e\" inputs: \"tags\" embedding "
                                                       "{ dim: 2 } } layers { inputs: [\"dense\", \"e\"] concat {} } "
                                                       "layers { dense { units: 1 } } head { type: REGRESSION } }\n");
  RunResult t = run_kiln({"train", "--config", config, "--set", "max_steps=5", "--set", "output_dir=" + dir.path() + "/run"},
                         dir.path());
  ASSERT_EQ(t.exit_code, 0) << t.err;
  RunResult x = run_kiln({"export", "--config", config, "--set", "output_dir=" + dir.path() + "/run", "--model_base_path",
                          dir.path() + "/models/m", "--format", "onnx"},
                         dir.path());
  EXPECT_NE(x.exit_code, 0);
  EXPECT_NE(x.err.find("ONNX export: feature 'tags' is multi-valued"), std::string::npos) << x.err;
}

}  // namespace
}  // namespace kiln::e2e
