#pragma once
// Runs the real `kiln` binary (the one built with the tests, or $KILN_BINARY) end to end.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kiln::e2e {

inline std::string kiln_binary() {
  const char* b = std::getenv("KILN_BINARY");
  return b ? b : KILN_BINARY_PATH;
}

inline std::string source_dir() {
  const char* s = std::getenv("KILN_SOURCE_DIR");
  return s ? s : KILN_SOURCE_DIR_PATH;
}

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// With KILN_E2E_DEVICE=sim (or cuda, or with an index: sim:1) in the environment, the verbs that
// compute (train, evaluate, export, predict, serve) run on that device unless the test chose one
// itself: tests/CMakeLists.txt registers the training and serving suites a second time that way
// (ctest -L sim, on sim:1, so every thread that issues work must make its device current), so
// every one of them also proves the device path against the same expectations.
inline std::vector<std::string> with_test_device(std::vector<std::string> args) {
  const char* device = std::getenv("KILN_E2E_DEVICE");
  if (!device || !*device || args.empty()) return args;
  for (const std::string& a : args)
    if (a == "--device" || a.rfind("device=", 0) == 0 || a.rfind("device_index=", 0) == 0) return args;
  const std::string name = device;
  std::string upper = name.substr(0, name.find(':'));
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string& verb = args[0];
  if (verb == "train" || verb == "evaluate" || verb == "export") {
    args.push_back("--set");
    args.push_back("device=" + upper);
    if (name.find(':') != std::string::npos) {
      args.push_back("--set");
      args.push_back("device_index=" + name.substr(name.find(':') + 1));
    }
  } else if (verb == "predict" || verb == "serve") {
    args.push_back("--device");
    args.push_back(device);
  }
  return args;
}

// Runs kiln with `args` in `dir`, capturing stdout and stderr.
inline RunResult run_kiln(const std::vector<std::string>& args, const std::string& dir) {
  std::string cmd = "cd " + shell_quote(dir) + " && " + shell_quote(kiln_binary());
  for (const auto& a : with_test_device(args)) cmd += " " + shell_quote(a);
  // Files of this call's own: tests running side by side (a CPU run and its sim run) share
  // fixture directories, and a shared name let one read or remove the other's output.
  static std::atomic<int> calls{0};
  const std::string tag = "." + std::to_string(::getpid()) + "." + std::to_string(calls++);
  std::string out = dir + "/.stdout" + tag, err = dir + "/.stderr" + tag;
  cmd += " >" + shell_quote(out) + " 2>" + shell_quote(err);
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

// Starts kiln in the background, its stderr to `log` (default DIR/.spawn.log); returns its pid.
inline pid_t spawn_kiln(const std::vector<std::string>& args, const std::string& dir, std::string log = "") {
  if (log.empty()) log = dir + "/.spawn.log";
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(127);
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    std::string bin = kiln_binary();
    argv.push_back(bin.data());
    std::vector<std::string> copy = with_test_device(args);
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// A fresh directory under the build tree, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    // The sim run of a test (KILN_E2E_DEVICE) runs beside its CPU run: a directory of its own.
    const char* device = std::getenv("KILN_E2E_DEVICE");
    if (device && *device) name = std::string(device) + "." + name;
    path_ = std::filesystem::absolute("e2e_tmp/" + name).string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }

 private:
  std::string path_;
};

inline bool fashion_mnist_installed() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

}  // namespace kiln::e2e
