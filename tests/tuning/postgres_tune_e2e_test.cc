// kiln tune --storage postgresql://... against a real PostgreSQL server started here (Debian's
// postgresql: initdb in the test's directory, a loopback port): two drivers with directories of
// their own (as on two machines) share one study, one is killed with -9 midway, and no trial is
// lost or run under two numbers.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "tests/e2e/kiln_process.h"
#include "tuning/study_store.h"

namespace kiln::tuning {
namespace {

namespace fs = std::filesystem;
using e2e::RunResult;
using e2e::run_kiln;
using e2e::shell_quote;
using e2e::slurp;
using e2e::spawn_kiln;
using e2e::TempDir;

// Debian's server binaries (postgresql-15 and later), newest first.
std::string postgres_bin() {
  std::string best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec))
    if (fs::exists(e.path() / "bin/pg_ctl") && e.path().string() > best) best = e.path().string();
  return best.empty() ? "" : best + "/bin";
}

int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

// A PostgreSQL server in DIR/pg on a loopback port, stopped at the end. The server refuses to run
// as root: under root it runs as the postgres user the package creates.
class PostgresServer {
 public:
  explicit PostgresServer(const std::string& dir) : data_(dir + "/pg") {
    bin_ = postgres_bin();
    if (bin_.empty()) return;
    fs::create_directories(data_);
    as_ = geteuid() == 0 ? "runuser -u postgres -- " : "";
    if (geteuid() == 0 && std::system(("chown -R postgres " + shell_quote(data_)).c_str()) != 0) return;
    port_ = free_port();
    const std::string log = " >> " + shell_quote(data_ + "/setup.log") + " 2>&1";
    if (sh(bin_ + "/initdb -D " + shell_quote(data_ + "/db") + " -A trust -U postgres --no-sync" + log) != 0) return;
    if (sh(bin_ + "/pg_ctl -D " + shell_quote(data_ + "/db") + " -w -l " + shell_quote(data_ + "/server.log") +
           " -o " + shell_quote("-p " + std::to_string(port_) + " -k " + data_ + " -c listen_addresses=127.0.0.1 -c fsync=off") +
           " start" + log) != 0)
      return;
    started_ = true;
    if (sh(bin_ + "/createdb -h 127.0.0.1 -p " + std::to_string(port_) + " -U postgres kiln" + log) != 0) return;
    url_ = "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/kiln";
  }
  ~PostgresServer() {
    if (started_) sh(bin_ + "/pg_ctl -D " + shell_quote(data_ + "/db") + " -m immediate stop > /dev/null 2>&1");
  }
  const std::string& url() const { return url_; }
  std::string why_not() const {
    return bin_.empty() ? "Debian's postgresql is not installed (scripts/setup.sh installs it)"
                        : "the server did not start: " + slurp(data_ + "/setup.log") + slurp(data_ + "/server.log");
  }

 private:
  int sh(const std::string& cmd) const { return std::system((as_ + cmd).c_str()); }
  std::string bin_, data_, as_, url_;
  int port_ = 0;
  bool started_ = false;
};

std::string spec_text(const std::string& command, const std::string& extra) {
  return "goal: MINIMIZE\nhyperparameter_metric_tag: 'loss'\ncommand: '" + command + "'\n" + extra +
         "\nparams { parameter_name: 'x' type: DOUBLE min_value: -1 max_value: 1 }\n";
}

// Each start of a trial appends a line to a file of its number shared by both drivers, so a
// trial that ran twice shows; trials sleep SLEEP seconds.
const char* kObjective = R"(#!/bin/sh
echo start >> "$STARTS/starts.$KILN_TUNE_TRIAL_ID"
sleep "${SLEEP:-0}"
awk -v x="$1" 'BEGIN { printf("{\"step\": 1, \"loss\": %.9f}\n", (x - 0.3) ^ 2) }' >> "$KILN_TUNE_METRICS_FILE"
)";

TEST(TunePostgresE2E, TwoDriversShareAStudyAndOneKilledMidwayLosesNoTrial) {
  TempDir dir;
  PostgresServer pg(dir.path());
  if (pg.url().empty()) {
    if (std::getenv("KILN_REQUIRE_POSTGRES")) FAIL() << pg.why_not();
    GTEST_SKIP() << pg.why_not();
  }
  const std::string obj = dir.file("obj.sh", kObjective);
  chmod(obj.c_str(), 0755);
  fs::create_directories(dir.path() + "/starts");
  const std::string spec = dir.file(
      "study.pbtxt", spec_text("STARTS=" + dir.path() + "/starts SLEEP=0.3 " + obj + " {x}", "max_trials: 12\nmax_parallel_trials: 2"));
  // Two "machines": their own directories, the same study name (the schema kiln_study).
  fs::create_directories(dir.path() + "/a");
  fs::create_directories(dir.path() + "/b");
  pid_t a = spawn_kiln({"tune", "--config", spec, "--study-dir", "study", "--storage", pg.url(), "--quiet"},
                       dir.path() + "/a", dir.path() + "/a.log");
  const std::string study_a = dir.path() + "/a/study";
  auto trials = [&] { return StudyStore(study_a, pg.url()).trials(); };
  // Driver B joins once the study exists.
  for (int i = 0; i < 1000 && !StudyStore::holds_study(study_a, pg.url()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(StudyStore::holds_study(study_a, pg.url())) << slurp(dir.path() + "/a.log");
  pid_t b = spawn_kiln({"tune", "--config", spec, "--study-dir", "study", "--storage", pg.url(), "--resume", "--quiet"},
                       dir.path() + "/b", dir.path() + "/b.log");
  // Kill A while it runs a trial, after a few completed.
  const auto start = std::chrono::steady_clock::now();
  bool killed = false;
  std::set<int64_t> orphaned;  // trials A ran when it was killed
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int completed = 0;
    orphaned.clear();
    for (const Trial& t : trials()) {
      completed += t.state == TrialState::kCompleted;
      if (t.state == TrialState::kRunning && t.driver_id == 1 && t.pid.has_value()) orphaned.insert(t.number);
    }
    if (completed >= 3 && !orphaned.empty()) {
      ASSERT_EQ(kill(a, SIGKILL), 0);
      killed = true;
      break;
    }
  }
  ASSERT_TRUE(killed) << slurp(dir.path() + "/a.log") << slurp(dir.path() + "/b.log");
  int status = 0;
  waitpid(a, &status, 0);
  waitpid(b, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(dir.path() + "/b.log");
  const std::vector<Trial> all = trials();
  ASSERT_EQ(all.size(), 12u);
  std::set<std::string> params;
  std::set<int64_t> numbers;
  int rerun = 0;
  for (const Trial& t : all) {
    EXPECT_EQ(t.state, TrialState::kCompleted) << t.number << " " << t.reason;
    numbers.insert(t.number);
    params.insert(assignment_to_json(t.params));
    const std::string starts = slurp(dir.path() + "/starts/starts." + std::to_string(t.number));
    const int64_t started = static_cast<int64_t>(std::count(starts.begin(), starts.end(), '\n'));
    // A trial of the killed driver is claimed again (attempt 2): it started once more, or for the
    // first time when A died between claiming it and starting its process. No attempt starts twice.
    EXPECT_LE(t.attempts, 2) << t.number;
    EXPECT_GE(started, 1) << t.number;
    EXPECT_LE(started, t.attempts) << t.number;
    if (t.attempts == 1) {
      EXPECT_EQ(started, 1) << t.number;
    }
    rerun += t.attempts > 1;
    // A's trials were finished by B: adopted (their processes outlive A, in process groups of
    // their own) or run again.
    if (orphaned.count(t.number)) {
      EXPECT_NE(t.driver_id, 1) << t.number << " still belongs to the killed driver";
    }
  }
  EXPECT_EQ(numbers.size(), 12u);
  EXPECT_EQ(params.size(), 12u) << "two trials got the same suggestion";
  std::printf("12 trials; %zu running under driver A at its kill -9, finished by B (%d of all trials run again)\n",
              orphaned.size(), rerun);
  // The report reads the study from the server.
  RunResult rep = run_kiln({"tune", "--report", "study", "--storage", pg.url()}, dir.path() + "/b");
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  EXPECT_NE(rep.out.find("12 trials"), std::string::npos) << rep.out;
}

TEST(TunePostgresE2E, ABadStorageUrlIsAClearError) {
  TempDir dir;
  const std::string spec = dir.file("study.pbtxt", spec_text("true {x}", "max_trials: 1"));
  RunResult r = run_kiln({"tune", "--config", spec, "--storage", "mysql://x"}, dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--storage mysql://x: not a postgresql:// URL"), std::string::npos) << r.err;
  r = run_kiln({"tune", "--config", spec, "--storage", "postgresql://kiln:secret@127.0.0.1:1/nowhere"}, dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cannot connect to the study database postgresql://kiln:***@127.0.0.1:1/nowhere"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("secret"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kiln::tuning
