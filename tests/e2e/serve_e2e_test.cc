// kiln export, kiln serve and kiln predict end to end: a model trained on the babyweight lab's
// schema (key, is_male, mother_age, plurality, gestation_weeks -> weight_pounds) is exported and
// served by the real binary on a loopback port; clients are raw sockets and tritonclient.http.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/e2e/http_client.h"
#include "tests/e2e/kiln_process.h"

namespace kiln::e2e {
namespace {

namespace fs = std::filesystem;

const char* kLabBody =
    R"J({"instances":[{"key":"b1","is_male":"True","mother_age":26.0,"plurality":"Single(1)","gestation_weeks":39}]})J";

// Rows with the lab's schema and a known signal; some values missing.
std::string lab_csv(int rows, uint64_t seed) {
  const char* plurality[] = {"Single(1)", "Twins(2)", "Triplets(3)"};
  std::string out = "key,is_male,mother_age,plurality,gestation_weeks,weight_pounds\n";
  uint64_t s = seed;
  auto next = [&] {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) / 9007199254740992.0;
  };
  char line[256];
  for (int i = 0; i < rows; ++i) {
    bool male = next() < 0.5;
    double age = 18 + 25 * next();
    int p = next() < 0.9 ? 0 : (next() < 0.8 ? 1 : 2);
    int weeks = 30 + static_cast<int>(12 * next());
    double w = 7 + (male ? 0.4 : 0) + 0.03 * (age - 28) - 1.8 * p + 0.25 * (weeks - 38) + 0.3 * (next() - 0.5);
    std::string age_text = next() < 0.05 ? "" : std::to_string(age).substr(0, 5);
    std::snprintf(line, sizeof line, "b%d,%s,%s,%s,%d,%.4f\n", i, male ? "True" : "False", age_text.c_str(),
                  plurality[p], weeks, w);
    out += line;
  }
  return out;
}

const char* kFeatureSpec = R"J(
features { name: "is_male" categorical { vocabulary {} } }
features { name: "mother_age" numeric { scaling: Z_SCORE } missing { kind: MEAN indicator: true } }
features { name: "plurality" categorical { vocabulary {} } }
features { name: "gestation_weeks" numeric { scaling: Z_SCORE } }
features { name: "age_bucket" source: "mother_age" bucketized { num_quantile_buckets: 5 } missing { kind: MEDIAN } }
label { column: "weight_pounds" type: REGRESSION }
key_column: "key"
)J";

const char* kTrainConfig = R"J(
data { csv { train_files: "train.csv" eval_files: "eval.csv" feature_spec_file: "feature_spec.pbtxt" } }
model {
  layers { name: "male_emb" inputs: "is_male" embedding { dim: 2 } }
  layers { name: "plural_emb" inputs: "plurality" embedding { dim: 2 } }
  layers { name: "age_emb" inputs: "age_bucket" embedding { dim: 2 } }
  layers { name: "deep_in" inputs: ["dense", "male_emb", "plural_emb", "age_emb"] concat {} }
  layers { name: "h1" dense { units: 16 activation: RELU } }
  layers { name: "weight" dense { units: 1 } }
  head { type: REGRESSION }
}
optimizer { type: ADAM learning_rate: 0.01 }
epochs: 4
batch_size: 32
output_dir: "run"
)J";

// The trained and exported model, built once and shared by every test process (ctest runs each
// test in its own process); a file lock makes concurrent processes wait for the first.
const std::string& fixture_dir() {
  static std::string dir = [] {
    // Keyed by the binary's build time: a rebuilt kiln exports afresh.
    const auto built = fs::last_write_time(kiln_binary()).time_since_epoch().count();
    std::string d = fs::absolute("e2e_tmp/serve_fixture_" + std::to_string(built)).string();
    fs::create_directories("e2e_tmp");
    int lock = ::open("e2e_tmp/serve_fixture.lock", O_CREAT | O_RDWR, 0644);
    ::flock(lock, LOCK_EX);
    if (!fs::exists(d + "/ready")) {
      fs::remove_all(d);
      fs::create_directories(d);
      std::ofstream(d + "/train.csv") << lab_csv(1500, 1);
      std::ofstream(d + "/eval.csv") << lab_csv(300, 2);
      std::ofstream(d + "/feature_spec.pbtxt") << kFeatureSpec;
      std::ofstream(d + "/train.pbtxt") << kTrainConfig;
      RunResult t = run_kiln({"train", "--config", "train.pbtxt"}, d);
      EXPECT_EQ(t.exit_code, 0) << t.err;
      RunResult e = run_kiln({"export", "--config", "train.pbtxt", "--model_base_path", "models/babyweight"}, d);
      EXPECT_EQ(e.exit_code, 0) << e.err;
      EXPECT_NE(e.out.find("bit-identical"), std::string::npos) << e.out;
      std::ofstream(d + "/ready") << "1";
    }
    ::flock(lock, LOCK_UN);
    ::close(lock);
    return d;
  }();
  return dir;
}

// A `kiln serve` process on a free port, stopped with SIGTERM.
class Server {
 public:
  Server(const std::string& dir, const std::string& base_path, const std::string& config_text = "") {
    dir_ = dir;
    port_file_ = dir + "/port." + std::to_string(::getpid());
    fs::remove(port_file_);
    std::vector<std::string> args{"serve", "--model_base_path", base_path, "--rest_port", "0", "--port_file", port_file_};
    // Tests stop servers with SIGTERM; only the shutdown tests wait out a grace period.
    if (config_text.find("shutdown_grace_s") == std::string::npos) {
      args.push_back("--shutdown_grace_s");
      args.push_back("0");
    }
    if (!config_text.empty()) {
      std::string cfg = dir + "/serve." + std::to_string(::getpid()) + ".pbtxt";
      std::ofstream(cfg) << config_text;
      args.push_back("--config");
      args.push_back(cfg);
    }
    // A log of its own: tests run concurrently in the shared fixture directory.
    static int servers = 0;
    log_ = dir + "/serve." + std::to_string(::getpid()) + "." + std::to_string(servers++) + ".log";
    pid_ = spawn_kiln(args, dir, log_);
    for (int i = 0; i < 200 && !fs::exists(port_file_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (fs::exists(port_file_)) port_ = std::stoi(slurp(port_file_));
  }
  ~Server() { stop(); }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // SIGTERM; returns the exit status (-1 if it did not exit within the timeout).
  int stop(int timeout_s = 30) {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    return wait_exit(timeout_s);
  }
  // Waits for the process to exit by itself; kills it after the timeout (and returns -1).
  int wait_exit(int timeout_s = 30) {
    if (pid_ <= 0) return exit_code_;
    for (int i = 0; i < timeout_s * 100; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
    return -1;
  }
  std::string log() const { return slurp(log_); }

 private:
  std::string dir_, port_file_, log_;
  pid_t pid_ = 0;
  int port_ = 0, exit_code_ = -1;
};

// Instances from CSV rows: the raw text as JSON (numbers bare, empty as null).
std::string instances_from_csv(const std::string& csv, int first, int count) {
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  std::string out = "{\"instances\":[";
  for (int i = 0; std::getline(in, line) && i < first + count; ++i) {
    if (i < first) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    if (i > first) out += ',';
    out += "{\"key\":\"" + f[0] + "\",\"is_male\":\"" + f[1] + "\",\"mother_age\":" + (f[2].empty() ? "null" : f[2]) +
           ",\"plurality\":\"" + f[3] + "\",\"gestation_weeks\":" + f[4] + "}";
  }
  return out + "]}";
}

// The per-example objects of a TF row-format response, as text.
std::vector<std::string> prediction_objects(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = body.find('[');
  while ((pos = body.find('{', pos)) != std::string::npos) {
    size_t end = body.find('}', pos);
    out.push_back(body.substr(pos, end - pos + 1));
    pos = end;
  }
  return out;
}

TEST(ServeE2E, LabRequestBodyWorksUnchangedAndTheKeyComesBack) {
  Server server(fixture_dir(), "models/babyweight");
  ASSERT_GT(server.port(), 0) << server.log();
  HttpReply r = http(server.port(), "POST", "/v1/models/babyweight:predict", kLabBody);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"key\":\"b1\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"predictions\":[{\"predictions\":["), std::string::npos) << r.body;
  // A Single(1) boy at 39 weeks weighs about 7.5 pounds in this data.
  double w = std::stod(r.body.substr(r.body.find("[{\"predictions\":[") + 17));
  EXPECT_NEAR(w, 7.5, 0.7);
  // Without a key: no empty key back, and with one output left, TF Serving's bare values.
  HttpReply keyless = http(server.port(), "POST", "/v1/models/babyweight:predict",
                           R"J({"instances":[{"is_male":"True","mother_age":26.0,"plurality":"Single(1)","gestation_weeks":39}]})J");
  EXPECT_EQ(keyless.status, 200) << keyless.body;
  EXPECT_EQ(keyless.body.rfind("{\"predictions\":[[", 0), 0u) << keyless.body;
  EXPECT_EQ(keyless.body.find("key"), std::string::npos) << keyless.body;
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(ServeE2E, HttpPredictionsEqualKilnPredictBitForBit) {
  const std::string& d = fixture_dir();
  const std::string csv = slurp(d + "/eval.csv");
  RunResult p = run_kiln({"predict", "--model", "models/babyweight", "--input", "eval.csv", "--output",
                          "preds." + std::to_string(::getpid()) + ".jsonl"}, d);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  std::vector<std::string> offline;
  {
    std::ifstream in(d + "/preds." + std::to_string(::getpid()) + ".jsonl");
    for (std::string line; std::getline(in, line);) offline.push_back(line);
  }
  ASSERT_EQ(offline.size(), 300u);
  Server server(d, "models/babyweight");
  ASSERT_GT(server.port(), 0) << server.log();
  // 60 rows in one request, then each of the first 20 alone: every batch composition agrees.
  HttpReply all = http(server.port(), "POST", "/v1/models/babyweight:predict", instances_from_csv(csv, 0, 60));
  ASSERT_EQ(all.status, 200) << all.body;
  std::vector<std::string> served = prediction_objects(all.body);
  ASSERT_EQ(served.size(), 60u);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(served[static_cast<size_t>(i)], offline[static_cast<size_t>(i)]) << "row " << i;
  for (int i = 0; i < 20; ++i) {
    HttpReply one = http(server.port(), "POST", "/v1/models/babyweight/versions/1:predict", instances_from_csv(csv, i, 1));
    ASSERT_EQ(one.status, 200);
    EXPECT_EQ(prediction_objects(one.body).at(0), offline[static_cast<size_t>(i)]) << "row " << i;
  }
}

// Requests that one I/O thread reads in the same round run as one batch, on any of the
// version's instances: 16 keep-alive connections each send a different row at once, 30 times;
// every answer equals kiln predict's for its row, and some batches held several requests.
TEST(ServeE2E, RequestsReadTogetherBatchOnSeveralInstancesAndAnswerAsPredict) {
  const std::string& d = fixture_dir();
  const std::string csv = slurp(d + "/eval.csv");
  const std::string out = "preds.batching." + std::to_string(::getpid()) + ".jsonl";
  RunResult p = run_kiln({"predict", "--model", "models/babyweight", "--input", "eval.csv", "--output", out}, d);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  std::vector<std::string> offline;
  {
    std::ifstream in(d + "/" + out);
    for (std::string line; std::getline(in, line);) offline.push_back(line);
  }
  ASSERT_EQ(offline.size(), 300u);
  Server server(d, "models/babyweight", "io_threads: 2\nbatching { instances: 2 }");
  ASSERT_GT(server.port(), 0) << server.log();
  // On sim (and CUDA) a version has one instance, which takes the device's turn.
  const char* device = std::getenv("KILN_E2E_DEVICE");
  const bool cpu = !device || !*device || std::string(device) == "cpu";
  EXPECT_NE(server.log().find(cpu ? "(2 instances," : "(1 instance,"), std::string::npos) << server.log();
  constexpr int kConnections = 16;
  std::vector<int> fds;
  for (int c = 0; c < kConnections; ++c) fds.push_back(connect_local(server.port()));
  // Batches ran, and rows summed over them; rows > batches once a batch held several requests.
  auto batches_and_rows = [&] {
    const std::string metrics = http(server.port(), "GET", "/metrics").body;
    auto value = [&](const std::string& name) {
      const size_t at = metrics.find(name);
      return at == std::string::npos ? -1.0 : std::stod(metrics.substr(metrics.find(' ', at) + 1));
    };
    return std::pair(value("kiln_batch_size_count{model=\"babyweight\",version=\"1\"}"),
                     value("kiln_batch_size_sum{model=\"babyweight\",version=\"1\"}"));
  };
  // Whether requests arrive together depends on scheduling: rounds go on until some did.
  int rounds = 0;
  for (bool batched = false; rounds < 30 || (!batched && rounds < 600); ++rounds) {
    for (int c = 0; c < kConnections; ++c) {
      const int row = (rounds * kConnections + c) % 300;
      ASSERT_TRUE(send_all(fds[static_cast<size_t>(c)],
                           http_request_text("POST", "/v1/models/babyweight:predict", instances_from_csv(csv, row, 1), "",
                                             /*keep_alive=*/true)));
    }
    for (int c = 0; c < kConnections; ++c) {
      const int row = (rounds * kConnections + c) % 300;
      HttpReply r = read_reply(fds[static_cast<size_t>(c)]);
      ASSERT_EQ(r.status, 200) << r.body;
      ASSERT_EQ(prediction_objects(r.body).at(0), offline[static_cast<size_t>(row)]) << "row " << row;
    }
    if (rounds % 10 == 9) {
      auto [batches, rows] = batches_and_rows();
      batched = batches < rows;
    }
  }
  for (int fd : fds) ::close(fd);
  auto [batches, rows] = batches_and_rows();
  EXPECT_EQ(rows, static_cast<double>(rounds * kConnections));
  EXPECT_LT(batches, rows) << "no batch held more than one request in " << rounds << " rounds";
}

// Large responses to a client with a small receive buffer that starts reading late arrive whole,
// and the connection goes on serving. (Loopback's send buffer takes even these in one send; the
// write path's asynchronous rest is for slower networks.)
TEST(ServeE2E, LargeResponsesToALateReaderArriveWhole) {
  const std::string& d = fixture_dir();
  const std::string csv = slurp(d + "/eval.csv");
  Server server(d, "models/babyweight", "batching { max_queue_size: 9000 }");
  ASSERT_GT(server.port(), 0) << server.log();
  // 9,000 rows (the eval file's 300, 30 times): answers of ~360 KB each.
  const std::string rows = instances_from_csv(csv, 0, 300);
  const std::string inner = rows.substr(rows.find('[') + 1, rows.rfind(']') - rows.find('[') - 1);
  std::string body = "{\"instances\":[";
  for (int i = 0; i < 30; ++i) body += (i ? "," : "") + inner;
  body += "]}";
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string request = http_request_text("POST", "/v1/models/babyweight:predict", body, "", /*keep_alive=*/true);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(send_all(fd, request));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    HttpReply r = read_reply(fd);
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 200) << server.log();
    EXPECT_GT(r.body.size(), 300000u);
    std::vector<std::string> objects = prediction_objects(r.body);
    ASSERT_EQ(objects.size(), 9000u);
    EXPECT_EQ(objects.front(), prediction_objects(http(server.port(), "POST", "/v1/models/babyweight:predict",
                                                       instances_from_csv(csv, 0, 1)).body).at(0));
  }
  ::close(fd);
}

TEST(ServeE2E, TensorFlowServingEndpoints) {
  Server server(fixture_dir(), "models/babyweight");
  const int port = server.port();
  ASSERT_GT(port, 0) << server.log();
  HttpReply status = http(port, "GET", "/v1/models/babyweight");
  EXPECT_EQ(status.status, 200);
  EXPECT_NE(status.body.find(R"("version":"1","state":"AVAILABLE")"), std::string::npos) << status.body;
  HttpReply meta = http(port, "GET", "/v1/models/babyweight/versions/1/metadata");
  EXPECT_EQ(meta.status, 200);
  EXPECT_NE(meta.body.find(R"("plurality":{"dtype":"DT_STRING")"), std::string::npos) << meta.body;
  EXPECT_NE(meta.body.find(R"("mother_age":{"dtype":"DT_FLOAT")"), std::string::npos) << meta.body;
  std::string examples = R"J({"examples":[{"is_male":"False","mother_age":30,"plurality":"Twins(2)","gestation_weeks":37}]})J";
  HttpReply regress = http(port, "POST", "/v1/models/babyweight:regress", examples);
  EXPECT_EQ(regress.status, 200) << regress.body;
  EXPECT_EQ(regress.body.rfind("{\"result\":[", 0), 0u) << regress.body;
  HttpReply classify = http(port, "POST", "/v1/models/babyweight:classify", examples);
  EXPECT_EQ(classify.status, 400) << classify.body;  // a regression model
  HttpReply columnar = http(port, "POST", "/v1/models/babyweight:predict",
                            R"J({"inputs":{"is_male":["True"],"mother_age":[26.0],"plurality":["Single(1)"],"gestation_weeks":[39],"key":["b1"]}})J");
  EXPECT_EQ(columnar.status, 200) << columnar.body;
  EXPECT_NE(columnar.body.find(R"("outputs":{"predictions":[[)"), std::string::npos) << columnar.body;
  EXPECT_EQ(http(port, "GET", "/v1/models/nosuch").status, 404);
  EXPECT_EQ(http(port, "POST", "/v1/models/babyweight/versions/7:predict", kLabBody).status, 404);
  EXPECT_EQ(http(port, "POST", "/v1/models/babyweight:explain", kLabBody).status, 404);
  EXPECT_EQ(http(port, "GET", "/v1/models/babyweight:predict").status, 405);
  EXPECT_EQ(http(port, "GET", "/nowhere").status, 404);
}

TEST(ServeE2E, KserveV2EndpointsAndMetrics) {
  Server server(fixture_dir(), "models/babyweight");
  const int port = server.port();
  ASSERT_GT(port, 0) << server.log();
  EXPECT_NE(http(port, "GET", "/v2").body.find("binary_tensor_data"), std::string::npos);
  EXPECT_EQ(http(port, "GET", "/v2/health/live").status, 200);
  EXPECT_EQ(http(port, "GET", "/v2/health/ready").status, 200);
  EXPECT_EQ(http(port, "GET", "/v2/models/babyweight/ready").status, 200);
  EXPECT_EQ(http(port, "GET", "/v2/models/babyweight/versions/1/ready").status, 200);
  HttpReply meta = http(port, "GET", "/v2/models/babyweight");
  EXPECT_NE(meta.body.find(R"({"name":"plurality","datatype":"BYTES","shape":[-1,1]})"), std::string::npos) << meta.body;
  std::string infer = R"J({"id":"q1","inputs":[
    {"name":"is_male","shape":[1,1],"datatype":"BYTES","data":["True"]},
    {"name":"mother_age","shape":[1,1],"datatype":"FP64","data":[26.0]},
    {"name":"plurality","shape":[1,1],"datatype":"BYTES","data":["Single(1)"]},
    {"name":"gestation_weeks","shape":[1,1],"datatype":"INT32","data":[39]},
    {"name":"key","shape":[1,1],"datatype":"BYTES","data":["b1"]}]})J";
  HttpReply v2 = http(port, "POST", "/v2/models/babyweight/infer", infer);
  ASSERT_EQ(v2.status, 200) << v2.body;
  HttpReply tf = http(port, "POST", "/v1/models/babyweight:predict", kLabBody);
  std::string tf_value = tf.body.substr(tf.body.find("[{\"predictions\":[") + 17);
  tf_value = tf_value.substr(0, tf_value.find(']'));
  EXPECT_NE(v2.body.find(R"("id":"q1")"), std::string::npos);
  EXPECT_NE(v2.body.find(R"({"name":"predictions","datatype":"FP32","shape":[1,1],"data":[)" + tf_value + "]}"),
            std::string::npos)
      << v2.body << " vs " << tf_value;
  EXPECT_NE(v2.body.find(R"("data":["b1"])"), std::string::npos);

  // Values outside the training vocabulary are served from the OOV bucket and counted per feature.
  HttpReply unseen = http(port, "POST", "/v1/models/babyweight:predict",
                          R"J({"instances":[{"is_male":"Unknown","mother_age":26,"plurality":"Multiple(2+)","gestation_weeks":39},)J"
                          R"J({"is_male":"False","mother_age":26,"plurality":"Quadruplets(4)","gestation_weeks":39}]})J");
  EXPECT_EQ(unseen.status, 200) << unseen.body;
  HttpReply metrics = http(port, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  for (const char* want : {"kiln_feature_oov_values_total{model=\"babyweight\",version=\"1\",feature=\"plurality\"} 2\n",
                           "kiln_feature_oov_values_total{model=\"babyweight\",version=\"1\",feature=\"is_male\"} 1\n","kiln_requests_total{model=\"babyweight\",version=\"1\",status=\"200\"}",
                           "kiln_request_seconds_bucket{model=\"babyweight\",version=\"1\",le=\"+Inf\"}",
                           "kiln_queue_seconds_count", "kiln_compute_seconds_count", "kiln_batch_size_bucket",
                           "kiln_queue_rows{model=\"babyweight\",version=\"1\"} 0",
                           "kiln_loaded_versions{model=\"babyweight\"} 1",
                           "kiln_feature_drift{model=\"babyweight\",version=\"1\",feature=\"mother_age\",measure=\"js\"}",
                           "kiln_feature_drift{model=\"babyweight\",version=\"1\",feature=\"plurality\",measure=\"linf\"}"})
    EXPECT_NE(metrics.body.find(want), std::string::npos) << want << "\n" << metrics.body;
}

TEST(ServeE2E, QueueLimitsAnswer503And504) {
  // A queue of one row refuses a two-row request; a zero deadline expires every queued request.
  Server small(fixture_dir(), "models/babyweight", "batching { max_queue_size: 1 }");
  ASSERT_GT(small.port(), 0) << small.log();
  const std::string two = instances_from_csv(slurp(fixture_dir() + "/eval.csv"), 0, 2);
  HttpReply full = http(small.port(), "POST", "/v1/models/babyweight:predict", two);
  EXPECT_EQ(full.status, 503) << full.body;
  EXPECT_NE(full.body.find("queue is full"), std::string::npos);
  EXPECT_EQ(http(small.port(), "POST", "/v1/models/babyweight:predict", kLabBody).status, 200);
  Server late(fixture_dir(), "models/babyweight", "batching { request_timeout_ms: 0 }");
  ASSERT_GT(late.port(), 0) << late.log();
  HttpReply expired = http(late.port(), "POST", "/v1/models/babyweight:predict", kLabBody);
  EXPECT_EQ(expired.status, 504) << expired.body;
  EXPECT_NE(expired.body.find("deadline"), std::string::npos);
  EXPECT_NE(http(late.port(), "GET", "/metrics").body.find("status=\"504\"} 1"), std::string::npos);
}

TEST(ServeE2E, TritonClientWithDefaultSettings) {
  const char* python = std::getenv("KILN_PYTHON");
  if (!python) GTEST_SKIP() << "KILN_PYTHON (a python with tritonclient[http]) is not set; scripts/test.sh sets it";
  Server server(fixture_dir(), "models/babyweight");
  ASSERT_GT(server.port(), 0) << server.log();
  std::string rows = R"J({"is_male":["True","False"],"mother_age":[26.0,33.5],"plurality":["Single(1)","Twins(2)"],"gestation_weeks":[39,36],"key":["b1","b2"]})J";
  std::string cmd = shell_quote(python) + " " + shell_quote(source_dir() + "/tests/tools/kserve_infer.py") +
                    " 127.0.0.1:" + std::to_string(server.port()) + " babyweight " + shell_quote(rows) + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  ASSERT_EQ(::pclose(pipe), 0) << out;
  HttpReply tf = http(server.port(), "POST", "/v1/models/babyweight:predict",
                      R"J({"instances":[{"key":"b1","is_male":"True","mother_age":26.0,"plurality":"Single(1)","gestation_weeks":39},)J"
                      R"J({"key":"b2","is_male":"False","mother_age":33.5,"plurality":"Twins(2)","gestation_weeks":36}]})J");
  std::vector<std::string> objs = prediction_objects(tf.body);
  ASSERT_EQ(objs.size(), 2u);
  // tritonclient prints the float32 outputs as doubles; compare as floats.
  size_t at = out.find("\"predictions\": [");
  ASSERT_NE(at, std::string::npos) << out;
  std::string list = out.substr(at + 16, out.find(']', at) - at - 16);
  for (int i = 0; i < 2; ++i) {
    float triton = std::stof(list.substr(0, list.find(',')));
    list = list.substr(list.find(',') + 1);
    float served = std::stof(objs[static_cast<size_t>(i)].substr(16));
    EXPECT_EQ(triton, served) << out << " vs " << tf.body;
  }
  EXPECT_NE(out.find("\"key\": [\"b1\", \"b2\"]"), std::string::npos) << out;
}

TEST(ServeE2E, BadInputGets4xxAndTheServerKeepsServing) {
  Server server(fixture_dir(), "models/babyweight",
                "max_body_bytes: 20000 header_timeout_ms: 400 max_request_rows: 50 max_json_depth: 32");
  const int port = server.port();
  ASSERT_GT(port, 0) << server.log();
  const std::string predict = "/v1/models/babyweight:predict";
  std::string row = R"J({"is_male":"True","mother_age":26,"plurality":"Single(1)","gestation_weeks":39})J";
  std::string many = "{\"instances\":[";
  for (int i = 0; i < 51; ++i) many += (i ? "," : "") + row;
  many += "]}";
  struct Case {
    std::string name, body;
    int status;
    std::string says;
  };
  std::vector<Case> cases = {
      {"malformed JSON", "{\"instances\":[{", 400, "malformed JSON"},
      {"not an object", "42", 400, "JSON object"},
      {"wrong type", R"J({"instances":[{"is_male":1.5e400}]})J", 400, "malformed JSON"},
      {"missing feature", R"J({"instances":[{"is_male":"True"}]})J", 400, "mother_age: missing"},
      {"NaN literal", R"J({"instances":[{"is_male":"True","mother_age":NaN,"plurality":"Single(1)","gestation_weeks":39}]})J", 400, "malformed JSON: NaN is not valid JSON"},
      {"Infinity literal", R"J({"instances":[{"is_male":"True","mother_age":Infinity,"plurality":"Single(1)","gestation_weeks":39}]})J", 400, "malformed JSON: Infinity is not valid JSON"},
      {"string for a number", R"J({"instances":[{"is_male":"True","mother_age":"26","plurality":"Single(1)","gestation_weeks":39}]})J", 400, "expected a number"},
      {"object for a string", R"J({"instances":[{"is_male":{},"mother_age":26,"plurality":"Single(1)","gestation_weeks":39}]})J", 400, "expected a string"},
      {"too many rows", many, 400, "the limit is 50"},
      {"deep nesting", "{\"instances\":" + std::string(100, '[') + std::string(100, ']') + "}", 400, "nested deeper"},
      {"invalid UTF-8", "{\"instances\":[{\"is_male\":\"\xc3\x28\"}]}", 400, "UTF-8"},
      {"empty body", "", 400, "malformed JSON"},
      {"oversized body", std::string(30000, ' '), 413, "limit"},
  };
  for (const Case& c : cases) {
    HttpReply r = http(port, "POST", predict, c.body);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body;
    EXPECT_NE(r.body.find("{\"error\":"), std::string::npos) << c.name << ": " << r.body;
    EXPECT_NE(r.body.find(c.says), std::string::npos) << c.name << ": " << r.body;
  }
  // One notion of missing: the CSV's NA spellings and null; an extra column is ignored, as by
  // kiln predict; the answers equal the all-null request's.
  const std::string missing_age = http(port, "POST", predict,
      R"J({"instances":[{"is_male":"True","mother_age":null,"plurality":"Single(1)","gestation_weeks":39}]})J").body;
  ASSERT_NE(missing_age.find("predictions"), std::string::npos) << missing_age;
  for (const char* age : {"\"NA\"", "\"\""}) {
    HttpReply r = http(port, "POST", predict, std::string(R"J({"instances":[{"is_male":"True","mother_age":)J") + age +
                                                   R"J(,"plurality":"Single(1)","gestation_weeks":39,"colour":"red"}]})J");
    EXPECT_EQ(r.status, 200) << age << ": " << r.body;
    EXPECT_EQ(r.body, missing_age) << age;
  }
  // KServe: binary length header pointing past the body, and garbage binary data.
  HttpReply v2 = http(port, "POST", "/v2/models/babyweight/infer", R"J({"inputs":[]})J",
                      "Inference-Header-Content-Length: 999\r\n");
  EXPECT_EQ(v2.status, 400) << v2.body;
  // A slow header: half a request line, then silence past the header timeout.
  int fd = connect_local(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "POST /v1/models/babyweight:predict HTTP/1.1\r\nHost: x\r\n"));
  auto t0 = std::chrono::steady_clock::now();
  HttpReply slow = read_reply(fd);
  ::close(fd);
  EXPECT_EQ(slow.status, 408) << slow.headers;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  // Not HTTP at all.
  fd = connect_local(port);
  ASSERT_TRUE(send_all(fd, "\x16\x03\x01 hello\r\n\r\n"));
  HttpReply garbage = read_reply(fd);
  ::close(fd);
  EXPECT_EQ(garbage.status, 400);
  // A chunked body whose chunk size is not hexadecimal: a 400, not a silent close.
  for (const char* chunks : {"zz\r\nabc\r\n0\r\n\r\n", "5;\x01\r\nhello\r\n0\r\n\r\n"}) {
    fd = connect_local(port);
    ASSERT_TRUE(send_all(fd, "POST /v1/models/babyweight:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                 std::string(chunks)));
    HttpReply bad_chunk = read_reply(fd);
    ::close(fd);
    EXPECT_EQ(bad_chunk.status, 400) << chunks << ": " << bad_chunk.headers;
    EXPECT_NE(bad_chunk.body.find("malformed HTTP request body"), std::string::npos) << bad_chunk.body;
  }
  // A header over the 16 KiB limit, and a wrong method.
  HttpReply huge = http(port, "POST", predict, kLabBody, "X-Padding: " + std::string(20000, 'a') + "\r\n");
  EXPECT_EQ(huge.status, 431) << huge.body;
  EXPECT_EQ(http(port, "GET", predict).status, 405);
  // And the server still answers.
  HttpReply ok = http(port, "POST", predict, kLabBody);
  EXPECT_EQ(ok.status, 200) << ok.body;
  HttpReply metrics = http(port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("status=\"400\"} "), std::string::npos);
  // Errors the HTTP layer answers count under the model the path names, each under its status.
  for (const char* status : {"400", "405", "408", "413", "431"})
    EXPECT_NE(metrics.body.find(std::string("kiln_requests_total{model=\"babyweight\",version=\"\",status=\"") + status +
                                "\"} "),
              std::string::npos)
        << status << "\n" << metrics.body;
  EXPECT_EQ(metrics.body.find("status=\"other\""), std::string::npos) << metrics.body;
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// Clients that post the lab body in a loop, counting statuses.
struct Load {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  std::string last_failure;
  std::mutex mutex;
  Load(int port, int clients) {
    for (int i = 0; i < clients; ++i)
      threads.emplace_back([this, port] {
        while (!stop) {
          HttpReply r = http(port, "POST", "/v1/models/babyweight:predict", kLabBody);
          if (r.status == 200) {
            ++ok;
          } else {
            ++failed;
            std::lock_guard<std::mutex> lock(mutex);
            last_failure = std::to_string(r.status) + " " + r.body;
          }
        }
      });
  }
  void finish() {
    stop = true;
    for (auto& t : threads) t.join();
  }
};

TEST(ServeE2E, HotReloadUnderLoadDropsNoRequest) {
  TempDir tmp;
  const std::string& fix = fixture_dir();
  fs::copy(fix + "/models", tmp.path() + "/models", fs::copy_options::recursive);
  Server server(tmp.path(), "models/babyweight", "poll_interval_s: 0.1");
  const int port = server.port();
  ASSERT_GT(port, 0) << server.log();
  Load load(port, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // A new version appears (exported elsewhere, moved in whole, as kiln export does).
  RunResult e = run_kiln({"export", "--config", fix + "/train.pbtxt", "--model_base_path", tmp.path() + "/staging",
                          "--version", "2"}, fix);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  fs::rename(tmp.path() + "/staging/2", tmp.path() + "/models/babyweight/2");
  bool switched = false;
  for (int i = 0; i < 100 && !switched; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    HttpReply s = http(port, "GET", "/v1/models/babyweight");
    switched = s.body.find("\"version\":\"2\",\"state\":\"AVAILABLE\"") != std::string::npos &&
               s.body.find("\"version\":\"1\"") == std::string::npos;
  }
  EXPECT_TRUE(switched) << server.log();
  // A broken version 3 fails to load; version 2 keeps serving.
  fs::create_directories(tmp.path() + "/models/babyweight/3");
  std::ofstream(tmp.path() + "/models/babyweight/3/servable.pbtxt") << "model_name: \"babyweight\" version: 3\n";
  bool failed_seen = false;
  for (int i = 0; i < 100 && !failed_seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    failed_seen = http(port, "GET", "/v1/models/babyweight").body.find("\"version\":\"3\",\"state\":\"END\"") != std::string::npos;
  }
  EXPECT_TRUE(failed_seen) << server.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  load.finish();
  EXPECT_GT(load.ok, 50);
  EXPECT_EQ(load.failed, 0) << load.last_failure;
  EXPECT_EQ(http(port, "POST", "/v1/models/babyweight/versions/2:predict", kLabBody).status, 200);
  HttpReply metrics = http(port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("kiln_loaded_versions{model=\"babyweight\"} 1"), std::string::npos) << metrics.body;
  // Version 1 unloads once its last request has ended.
  bool unloaded = false;
  for (int i = 0; i < 100 && !unloaded; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    unloaded = server.log().find("version 1 unloaded") != std::string::npos;
  }
  EXPECT_TRUE(unloaded) << server.log();
  EXPECT_EQ(server.stop(), 0);
}

TEST(ServeE2E, CorruptNewestVersionFallsBackToTheNewestThatLoads) {
  TempDir tmp;
  const std::string& fix = fixture_dir();
  const std::string base = tmp.path() + "/models/babyweight";
  fs::copy(fix + "/models", tmp.path() + "/models", fs::copy_options::recursive);
  // Version 2: a manifest cut off in the middle (a text-format parse error); version 3: intact
  // manifest, one flipped byte in the weights.
  fs::copy(base + "/1", base + "/2", fs::copy_options::recursive);
  fs::copy(base + "/1", base + "/3", fs::copy_options::recursive);
  const std::string manifest = slurp(base + "/1/servable.pbtxt");
  std::ofstream(base + "/2/servable.pbtxt", std::ios::trunc) << manifest.substr(0, manifest.size() / 2) << "\n}";
  {
    std::fstream w(base + "/3/weights.kckpt", std::ios::in | std::ios::out | std::ios::binary);
    w.seekp(static_cast<std::streamoff>(fs::file_size(base + "/3/weights.kckpt") / 2));
    w.put('\x5a');
  }
  // The staging directory of an export killed mid-way (pid 4194305 is above any pid_max).
  fs::create_directories(base + "/.tmp-4-4194305");
  Server server(tmp.path(), base);  // the default policy: latest 1
  const int port = server.port();
  ASSERT_GT(port, 0) << server.log();
  EXPECT_EQ(http(port, "GET", "/v2/health/ready").status, 200) << server.log();
  EXPECT_EQ(http(port, "POST", "/v1/models/babyweight:predict", kLabBody).status, 200);
  HttpReply status = http(port, "GET", "/v1/models/babyweight");
  EXPECT_NE(status.body.find(R"("version":"1","state":"AVAILABLE")"), std::string::npos) << status.body;
  EXPECT_NE(status.body.find(R"("version":"2","state":"END")"), std::string::npos) << status.body;
  EXPECT_NE(status.body.find(R"("version":"3","state":"END")"), std::string::npos) << status.body;
  EXPECT_NE(status.body.find("2/servable.pbtxt:"), std::string::npos) << status.body;  // file:line:column
  EXPECT_NE(status.body.find(base + "/3: checksum mismatch in weights.kckpt"), std::string::npos) << status.body;
  HttpReply metrics = http(port, "GET", "/metrics");
  for (const char* v : {"2", "3"})
    EXPECT_NE(metrics.body.find(std::string("kiln_version_load_failed{model=\"babyweight\",version=\"") + v + "\"} 1"),
              std::string::npos)
        << metrics.body;
  EXPECT_NE(metrics.body.find("kiln_loaded_versions{model=\"babyweight\"} 1"), std::string::npos);
  // The log: one line per bad version, no protobuf output of its own.
  const std::string log = server.log();
  EXPECT_EQ(log.find("libprotobuf"), std::string::npos) << log;
  size_t lines = 0;
  for (size_t at = log.find("failed to load"); at != std::string::npos; at = log.find("failed to load", at + 1)) ++lines;
  EXPECT_EQ(lines, 2u) << log;
  EXPECT_NE(log.find(base + "/.tmp-4-4194305 is the staging directory of an export that died"), std::string::npos)
      << log;
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(ServeE2E, VersionPoliciesAndSeveralModels) {
  TempDir tmp;
  const std::string& fix = fixture_dir();
  fs::copy(fix + "/models", tmp.path() + "/models", fs::copy_options::recursive);
  RunResult e = run_kiln({"export", "--config", fix + "/train.pbtxt", "--model_base_path",
                          tmp.path() + "/models/babyweight", "--version", "2"}, fix);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const std::string base = tmp.path() + "/models/babyweight";
  Server server(tmp.path(), base,
                "models { name: \"pinned\" base_path: \"" + base + "\" version_policy { specific { versions: [1] } } }\n"
                "models { name: \"every\" base_path: \"" + base + "\" version_policy { all {} } }\n"
                "models { name: \"two_latest\" base_path: \"" + base + "\" version_policy { latest { num_versions: 2 } } }");
  const int port = server.port();
  ASSERT_GT(port, 0) << server.log();
  auto versions = [&](const std::string& m) { return http(port, "GET", "/v1/models/" + m).body; };
  EXPECT_EQ(versions("babyweight").find("\"version\":\"1\""), std::string::npos);  // latest 1: only 2
  EXPECT_NE(versions("babyweight").find("\"version\":\"2\",\"state\":\"AVAILABLE\""), std::string::npos);
  EXPECT_NE(versions("pinned").find("\"version\":\"1\",\"state\":\"AVAILABLE\""), std::string::npos);
  EXPECT_EQ(versions("pinned").find("\"version\":\"2\""), std::string::npos);
  for (const char* m : {"every", "two_latest"}) {
    EXPECT_NE(versions(m).find("\"version\":\"1\",\"state\":\"AVAILABLE\""), std::string::npos) << m;
    EXPECT_NE(versions(m).find("\"version\":\"2\",\"state\":\"AVAILABLE\""), std::string::npos) << m;
  }
  EXPECT_EQ(http(port, "POST", "/v1/models/pinned/versions/1:predict", kLabBody).status, 200);
  EXPECT_EQ(http(port, "POST", "/v1/models/pinned/versions/2:predict", kLabBody).status, 404);
  HttpReply v2 = http(port, "POST", "/v2/models/every/versions/1/infer",
                      R"J({"inputs":[{"name":"is_male","shape":[1],"datatype":"BYTES","data":["True"]},
                      {"name":"mother_age","shape":[1],"datatype":"FP32","data":[26]},
                      {"name":"plurality","shape":[1],"datatype":"BYTES","data":["Single(1)"]},
                      {"name":"gestation_weeks","shape":[1],"datatype":"FP32","data":[39]}]})J");
  EXPECT_EQ(v2.status, 200) << v2.body;
  EXPECT_NE(v2.body.find("\"model_name\":\"every\",\"model_version\":\"1\""), std::string::npos) << v2.body;
}

TEST(ServeE2E, SigtermUnderLoadCompletesInFlightRequests) {
  Server server(fixture_dir(), "models/babyweight", "shutdown_deadline_s: 10 shutdown_grace_s: 1");
  const int port = server.port();
  ASSERT_GT(port, 0) << server.log();
  // Keep-alive clients with a request always in flight; each reconnects after "Connection: close"
  // and stops when the listener refuses it.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, cut{0}, refused{0}, closed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i)
    clients.emplace_back([&] {
      while (!stop) {
        int fd = connect_local(port);
        if (fd < 0) {
          ++refused;
          break;
        }
        while (!stop) {
          if (!send_all(fd, http_request_text("POST", "/v1/models/babyweight:predict", kLabBody, "", true))) {
            ++cut;
            break;
          }
          HttpReply r = read_reply(fd);
          if (r.status == 200) ++ok;
          if (r.status == 0) {
            ++cut;  // sent, never answered
            break;
          }
          if (r.headers.find("Connection: close") != std::string::npos) {
            ++closed;
            break;
          }
        }
        ::close(fd);
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int before = ok;
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  // Not ready at once, yet still answering (and accepting) through the grace period.
  bool unready = false;
  for (int i = 0; i < 50 && !unready; ++i) {
    unready = http(port, "GET", "/v2/health/ready").status == 503;
    if (!unready) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(unready);
  const int at_unready = ok;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(http(port, "POST", "/v1/models/babyweight:predict", kLabBody).status, 200);  // a new connection
  EXPECT_GT(ok, at_unready);
  EXPECT_EQ(server.wait_exit(), 0) << server.log();
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(before, 20);
  EXPECT_NE(server.log().find("drained, exiting"), std::string::npos) << server.log();
  // No request that was sent went unanswered: each keep-alive client got "Connection: close" on
  // a response after the listener closed, then found the port refusing.
  EXPECT_EQ(cut, 0) << server.log();
  EXPECT_GE(closed, 4);
  EXPECT_EQ(refused, 4);
}

TEST(ServeE2E, SigtermLetsUploadsFinishAndKeepAliveClientsGetConnectionClose) {
  Server server(fixture_dir(), "models/babyweight", "shutdown_grace_s: 1");
  const int port = server.port();
  ASSERT_GT(port, 0) << server.log();
  const std::string predict = "/v1/models/babyweight:predict";
  const std::string keep_request = http_request_text("POST", predict, kLabBody, "", true);
  int idle = connect_local(port);
  ASSERT_TRUE(send_all(idle, keep_request));
  HttpReply first = read_reply(idle);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.headers.find("Connection: close"), std::string::npos) << first.headers;
  // An upload whose body is half sent when SIGTERM arrives.
  const std::string upload = http_request_text("POST", predict, kLabBody, "", true);
  const size_t half = upload.size() - std::string(kLabBody).size() / 2;
  int uploading = connect_local(port);
  ASSERT_TRUE(send_all(uploading, upload.substr(0, half)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(http(port, "GET", "/v2/health/ready").status, 503);
  EXPECT_EQ(http(port, "GET", "/v2/models/babyweight/ready").status, 503);
  HttpReply status = http(port, "GET", "/v1/models/babyweight");
  EXPECT_EQ(status.status, 503);
  EXPECT_NE(status.body.find("\"state\":\"UNLOADING\""), std::string::npos) << status.body;
  // During the grace period the keep-alive connection is served as before.
  ASSERT_TRUE(send_all(idle, keep_request));
  HttpReply during = read_reply(idle);
  EXPECT_EQ(during.status, 200);
  EXPECT_EQ(during.headers.find("Connection: close"), std::string::npos) << during.headers;
  // Then the listener closes...
  bool refused = false;
  for (int i = 0; i < 300 && !refused; ++i) {
    int fd = connect_local(port);
    refused = fd < 0;
    if (refused) break;
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(refused) << server.log();
  // ...the idle keep-alive connection's next request is answered with "Connection: close"...
  ASSERT_TRUE(send_all(idle, keep_request));
  HttpReply last = read_reply(idle);
  EXPECT_EQ(last.status, 200) << server.log();
  EXPECT_NE(last.headers.find("Connection: close"), std::string::npos) << last.headers;
  ::close(idle);
  // ...and the upload completes.
  ASSERT_TRUE(send_all(uploading, upload.substr(half)));
  HttpReply uploaded = read_reply(uploading);
  ::close(uploading);
  EXPECT_EQ(uploaded.status, 200) << uploaded.body;
  EXPECT_NE(uploaded.headers.find("Connection: close"), std::string::npos) << uploaded.headers;
  EXPECT_EQ(server.wait_exit(), 0) << server.log();
  const std::string log = server.log();
  EXPECT_LT(log.find("SIGTERM received: not ready"), log.find("closing the listener")) << log;
}

TEST(ServeE2E, ClassifiersAnswerWithClassNamesAndKeysOnlyWhenSent) {
  // A multiclass model on the lab data: plurality from the other columns.
  TempDir tmp;
  tmp.file("train.csv", lab_csv(800, 3));
  tmp.file("eval.csv", lab_csv(100, 4));
  tmp.file("spec.pbtxt", R"J(
features { name: "is_male" categorical { vocabulary {} } }
features { name: "mother_age" numeric { scaling: Z_SCORE } missing { kind: MEAN } }
features { name: "gestation_weeks" numeric { scaling: Z_SCORE } }
features { name: "weight_pounds" numeric { scaling: Z_SCORE } }
label { column: "plurality" type: MULTICLASS }
key_column: "key"
)J");
  tmp.file("train.pbtxt", R"J(
data { csv { train_files: "train.csv" eval_files: "eval.csv" feature_spec_file: "spec.pbtxt" } }
model {
  layers { name: "male_emb" inputs: "is_male" embedding { dim: 2 } }
  layers { name: "in" inputs: ["dense", "male_emb"] concat {} }
  layers { name: "logits" dense { units: 3 } }
  head { type: MULTICLASS num_classes: 3 }
}
optimizer { type: ADAM learning_rate: 0.05 }
epochs: 3
batch_size: 32
output_dir: "run"
)J");
  RunResult t = run_kiln({"train", "--config", "train.pbtxt"}, tmp.path());
  ASSERT_EQ(t.exit_code, 0) << t.err;
  RunResult e = run_kiln({"export", "--config", "train.pbtxt", "--model_base_path", "models/plurality"}, tmp.path());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  Server server(tmp.path(), "models/plurality");
  const int port = server.port();
  ASSERT_GT(port, 0) << server.log();
  const std::string row = R"J("is_male":"True","mother_age":26.0,"gestation_weeks":39,"weight_pounds":7.6)J";
  // Single(1) is 90% of the rows, so the label vocabulary (most frequent first) gives it id 0.
  HttpReply keyed = http(port, "POST", "/v1/models/plurality:predict", "{\"instances\":[{\"key\":\"k7\"," + row + "}]}");
  ASSERT_EQ(keyed.status, 200) << keyed.body;
  EXPECT_NE(keyed.body.find(R"J("class_ids":[0],"classes":["Single(1)"],"key":"k7"})J"), std::string::npos) << keyed.body;
  HttpReply bare = http(port, "POST", "/v1/models/plurality:predict", "{\"instances\":[{" + row + "}]}");
  ASSERT_EQ(bare.status, 200) << bare.body;
  EXPECT_NE(bare.body.find(R"J("class_ids":[0],"classes":["Single(1)"]})J"), std::string::npos) << bare.body;
  EXPECT_EQ(bare.body.find("\"key\""), std::string::npos) << bare.body;
  HttpReply columnar = http(port, "POST", "/v1/models/plurality:predict",
                            R"J({"inputs":{"is_male":["True"],"mother_age":[26.0],"gestation_weeks":[39],"weight_pounds":[7.6]}})J");
  EXPECT_NE(columnar.body.find(R"J("classes":[["Single(1)"]]})J"), std::string::npos) << columnar.body;
  EXPECT_EQ(columnar.body.find("\"key\""), std::string::npos) << columnar.body;
  // KServe v2: classes as BYTES, and no key output for a request without the key input.
  HttpReply v2 = http(port, "POST", "/v2/models/plurality/infer", R"J({"inputs":[
    {"name":"is_male","shape":[1],"datatype":"BYTES","data":["True"]},
    {"name":"mother_age","shape":[1],"datatype":"FP32","data":[26]},
    {"name":"gestation_weeks","shape":[1],"datatype":"FP32","data":[39]},
    {"name":"weight_pounds","shape":[1],"datatype":"FP32","data":[7.6]}]})J");
  ASSERT_EQ(v2.status, 200) << v2.body;
  EXPECT_NE(v2.body.find(R"J({"name":"classes","datatype":"BYTES","shape":[1,1],"data":["Single(1)"]})J"), std::string::npos)
      << v2.body;
  EXPECT_EQ(v2.body.find("\"key\""), std::string::npos) << v2.body;
  // kiln predict writes the same objects, with keys only when the input has the key column.
  tmp.file("rows.jsonl", "{" + row + "}\n");
  RunResult p = run_kiln({"predict", "--model", "models/plurality", "--input", "rows.jsonl", "--output", "p.jsonl"},
                         tmp.path());
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(slurp(tmp.path() + "/p.jsonl"), prediction_objects(bare.body).at(0) + "\n");
  tmp.file("rows.csv", "key,is_male,mother_age,gestation_weeks,weight_pounds\nk7,True,26.0,39,7.6\n");
  p = run_kiln({"predict", "--model", "models/plurality", "--input", "rows.csv", "--output", "p.jsonl"}, tmp.path());
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(slurp(tmp.path() + "/p.jsonl"), prediction_objects(keyed.body).at(0) + "\n");
  // :classify names the classes too.
  HttpReply classify = http(port, "POST", "/v1/models/plurality:classify", "{\"examples\":[{" + row + "}]}");
  EXPECT_NE(classify.body.find("[\"Twins(2)\","), std::string::npos) << classify.body;
}

TEST(ServeE2E, ExportFailsCleanlyWithoutCheckpointAndImageModelsServe) {
  TempDir tmp;
  const std::string& fix = fixture_dir();
  RunResult none = run_kiln({"export", "--config", fix + "/train.pbtxt", "--set", "output_dir=" + tmp.path() + "/nothing",
                             "--model_base_path", tmp.path() + "/m"}, fix);
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("no checkpoint"), std::string::npos) << none.err;
  EXPECT_FALSE(fs::exists(tmp.path() + "/m/1"));
  if (!fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  std::string cfg = tmp.file("mlp.pbtxt", R"J(
data { idx {
  train_images: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
  train_labels: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
  eval_images: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
  eval_labels: "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
  max_train_examples: 2000 max_eval_examples: 200 } }
model {
  inputs { name: "image" shape: [28, 28, 1] }
  layers { name: "flat" flatten {} }
  layers { name: "h" dense { units: 32 activation: RELU } }
  layers { name: "logits" dense { units: 10 } }
  head { type: MULTICLASS num_classes: 10 }
}
optimizer { type: ADAM learning_rate: 0.002 }
epochs: 1
batch_size: 64
output_dir: "run"
)J");
  ASSERT_EQ(run_kiln({"train", "--config", cfg}, tmp.path()).exit_code, 0);
  RunResult e = run_kiln({"export", "--config", cfg, "--model_base_path", "models/fmnist", "--check_rows", "64"}, tmp.path());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.out.find("64 rows bit-identical"), std::string::npos) << e.out;
  Server server(tmp.path(), "models/fmnist");
  ASSERT_GT(server.port(), 0) << server.log();
  std::string image = "[";
  for (int i = 0; i < 784; ++i) image += (i ? "," : "") + std::to_string((i * 37) % 256);
  image += "]";
  HttpReply r = http(server.port(), "POST", "/v1/models/fmnist:predict", "{\"instances\":[" + image + "]}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"probabilities\":["), std::string::npos);
  EXPECT_NE(r.body.find("\"class_ids\":["), std::string::npos);
  tmp.file("rows.jsonl", image + "\n");
  RunResult p = run_kiln({"predict", "--model", "models/fmnist", "--input", "rows.jsonl", "--output", "p.jsonl"}, tmp.path());
  ASSERT_EQ(p.exit_code, 0) << p.err;
  std::string line = slurp(tmp.path() + "/p.jsonl");
  EXPECT_EQ(prediction_objects(r.body).at(0) + "\n", line);
  HttpReply bad = http(server.port(), "POST", "/v1/models/fmnist:predict", "{\"instances\":[[1,2,3]]}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("needs 784"), std::string::npos) << bad.body;
}

}  // namespace
}  // namespace kiln::e2e
