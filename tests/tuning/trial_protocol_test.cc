// The trial protocol pieces on real files and real processes: the metrics reader, the median
// stopping rule, and trial processes (exit codes, signals, process groups, output files).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/e2e/kiln_process.h"
#include "tuning/median_stopping.h"
#include "tuning/metrics_reader.h"
#include "tuning/trial_process.h"

namespace kiln::tuning {
namespace {

using e2e::slurp;
using e2e::TempDir;

void append(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::app) << text; }

TEST(MetricsReader, ReadsCompleteLinesAsTheFileGrows) {
  TempDir dir;
  std::string path = dir.path() + "/metrics.jsonl";
  MetricsReader r(path, "rmse");
  EXPECT_TRUE(r.poll().empty());  // no file yet
  append(path, "{\"step\": 10, \"rmse\": 1.5, \"loss\": 2}\n{\"step\": 20, \"rm");
  auto a = r.poll();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0], MetricPoint(10, 1.5));
  append(path, "se\": 1.25}\n{\"loss\": 3}\n\n{\"rmse\": 1.0}");  // no step: previous + 1
  auto b = r.poll();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0], MetricPoint(20, 1.25));
  auto c = r.poll(true);  // the trial ended: the unterminated last line counts
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], MetricPoint(21, 1.0));
  EXPECT_EQ(r.last_value(), 1.0);
  EXPECT_TRUE(r.error().empty());
}

TEST(MetricsReader, MalformedLinesAreErrorsWithTheLineNumber) {
  TempDir dir;
  struct Case {
    std::string text, expected;
  };
  std::vector<Case> cases = {
      {"{\"step\": 1, \"rmse\": 2}\nnot json\n", "metrics file line 2: not a JSON object"},
      {"{\"step\": 1, \"rmse\": NaN}\n", "line 1: not a JSON object"},
      {"{\"step\": 1, \"rmse\": \"low\"}\n", "\"rmse\" is not a finite number"},
      {"{\"step\": 1.5, \"rmse\": 2}\n", "\"step\" must be a non-negative integer"},
      {"[1, 2]\n", "line 1: not a JSON object"},
  };
  int i = 0;
  for (const Case& c : cases) {
    std::string path = dir.path() + "/m" + std::to_string(i++);
    append(path, c.text);
    MetricsReader r(path, "rmse");
    r.poll();
    EXPECT_NE(r.error().find(c.expected), std::string::npos) << c.text << " -> " << r.error();
  }
}

Curve curve(std::initializer_list<double> values) {
  Curve c;
  int64_t step = 0;
  for (double v : values) c.emplace_back(step += 10, v);
  return c;
}

TEST(MedianStopping, StopsATrialWorseThanTheMedianOfRunningAverages) {
  EarlyStoppingSpec rule;
  rule.set_min_completed_trials(3);
  rule.set_warmup_steps(20);
  std::vector<Curve> done = {curve({1.0, 0.8, 0.6, 0.5}), curve({1.2, 0.9, 0.7, 0.6}), curve({2.0, 1.5, 1.2, 1.0})};
  // Running averages at step 20: 0.9, 1.05, 1.75 -> median 1.05.
  EXPECT_EQ(median_stopping_decision(curve({3.0}), done, rule, true), std::nullopt);  // step 10 < warm-up
  auto stop = median_stopping_decision(curve({3.0, 2.5}), done, rule, true);
  ASSERT_TRUE(stop.has_value());
  EXPECT_NE(stop->find("median 1.05"), std::string::npos) << *stop;
  EXPECT_EQ(median_stopping_decision(curve({3.0, 1.0}), done, rule, true), std::nullopt);  // best 1.0 beats 1.05
  // Maximizing flips the comparison.
  EXPECT_EQ(median_stopping_decision(curve({3.0, 2.5}), done, rule, false), std::nullopt);
  // Too few completed trials to judge.
  done.pop_back();
  EXPECT_EQ(median_stopping_decision(curve({3.0, 2.5}), done, rule, true), std::nullopt);
}

SpawnRequest request(const TempDir& dir, const std::string& command) {
  SpawnRequest r;
  r.command = command;
  r.working_dir = dir.path();
  r.stdout_path = dir.path() + "/out.txt";
  r.stderr_path = dir.path() + "/err.txt";
  return r;
}

TEST(TrialProcess, ExitCodeEnvironmentAndOutputFiles) {
  TempDir dir;
  SpawnRequest r = request(dir, "echo \"$KILN_TUNE_TRIAL_ID $PWD\"; echo oops >&2; exit 7");
  r.extra_env = {"KILN_TUNE_TRIAL_ID=42"};
  TrialProcess p = TrialProcess::spawn(r);
  EXPECT_GT(p.start_time(), 0);
  ExitStatus s = p.wait();
  EXPECT_EQ(s.code, 7);
  EXPECT_EQ(s.describe(), "exit code 7");
  EXPECT_EQ(slurp(dir.path() + "/out.txt"), "42 " + dir.path() + "\n");
  EXPECT_EQ(slurp(dir.path() + "/err.txt"), "oops\n");
  EXPECT_TRUE(TrialProcess::spawn(request(dir, "true")).wait().success());
}

TEST(TrialProcess, SignalReachesTheWholeProcessGroup) {
  TempDir dir;
  // The trial starts a background grandchild that records its pid; SIGTERM to the group must end
  // both, and the trial is reported as killed by the signal.
  TrialProcess p = TrialProcess::spawn(request(dir, "sleep 30 & echo $! > child.pid; wait"));
  std::string pid_file = dir.path() + "/child.pid";
  for (int i = 0; i < 200 && slurp(pid_file).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  pid_t child = std::stoi(slurp(pid_file));
  int64_t child_start = process_start_time(child);
  ASSERT_TRUE(process_alive(child, child_start));
  EXPECT_FALSE(p.poll().has_value());
  p.signal_group(SIGTERM);
  ExitStatus s = p.wait();
  EXPECT_EQ(s.signal, SIGTERM);
  EXPECT_NE(s.describe().find("killed by signal 15"), std::string::npos);
  for (int i = 0; i < 200 && process_alive(child, child_start); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(process_alive(child, child_start));
}

TEST(TrialProcess, OrphanGroupsAreTerminatedByPidAndStartTime) {
  TempDir dir;
  TrialProcess p = TrialProcess::spawn(request(dir, "trap '' TERM; sleep 30"));  // ignores SIGTERM: needs SIGKILL
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  terminate_orphan_group(p.pid(), p.start_time() + 1, 0.1);  // wrong start time: a reused pid, left alone
  EXPECT_FALSE(p.poll().has_value());
  auto t0 = std::chrono::steady_clock::now();
  terminate_orphan_group(p.pid(), p.start_time(), 0.3);
  ExitStatus s = p.wait();
  EXPECT_EQ(s.signal, SIGKILL);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

}  // namespace
}  // namespace kiln::tuning
