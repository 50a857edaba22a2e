#pragma once
// Runs the real `kiln` binary (the one built with the tests, or $KILN_BINARY) end to end.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

// Runs kiln with `args` in `dir`, capturing stdout and stderr.
inline RunResult run_kiln(const std::vector<std::string>& args, const std::string& dir) {
  std::string cmd = "cd " + shell_quote(dir) + " && " + shell_quote(kiln_binary());
  for (const auto& a : args) cmd += " " + shell_quote(a);
  std::string out = dir + "/.stdout", err = dir + "/.stderr";
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
    std::vector<std::string> copy = args;
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
