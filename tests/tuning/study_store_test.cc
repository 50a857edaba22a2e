// The study database on real SQLite files: persistence across connections, concurrent drivers
// claiming trials, orphan reclaiming, and the claim limits.
#include "tuning/study_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>

#include "core/error.h"
#include "io/config_file.h"
#include "tests/e2e/kiln_process.h"
#include "tuning/sqlite_db.h"
#include "tuning/study_report.h"
#include "tuning/study_spec.h"
#include "tuning/trial_process.h"

namespace kiln::tuning {
namespace {

using e2e::TempDir;

StudySpec make_spec() {
  StudySpec spec;
  io::parse_config_text(R"(
    name: "s" goal: MINIMIZE hyperparameter_metric_tag: "loss" max_trials: 12 max_parallel_trials: 12
    command: "true"
    params { parameter_name: "x" type: DOUBLE min_value: 0 max_value: 1 }
    params { parameter_name: "k" type: CATEGORICAL categorical_values: ["a", "b", "c"] }
  )", "spec", spec);
  validate_study_spec(spec, "spec");
  return spec;
}

TEST(StudyStore, RecordsSurviveReopening) {
  TempDir dir;
  int64_t id;
  {
    EXPECT_FALSE(StudyStore::holds_study(dir.path()));
    EXPECT_THROW(StudyStore store(dir.path()), Error);
    ASSERT_TRUE(StudyStore::create(dir.path(), make_spec(), "/work/dir"));
    EXPECT_FALSE(StudyStore::create(dir.path(), make_spec(), "/elsewhere"));  // changes nothing
    StudyStore store(dir.path());
    auto suggester = make_suggester(store.spec());
    int64_t driver = store.register_driver();
    Trial t;
    ASSERT_EQ(store.claim_trial(driver, *suggester, t), ClaimOutcome::kClaimed);
    id = t.id;
    store.set_process(t.id, 123, 456, 1000.5);
    store.add_measurements(t.id, {{1, 3.0}, {2, 2.5}});
    store.add_measurements(t.id, {{2, 2.0}});  // a re-run rewrites its steps
    store.finish_trial(t.id, TrialState::kCompleted, 2.0, 0, "");
  }
  StudyStore again(dir.path());
  EXPECT_TRUE(StudyStore::holds_study(dir.path()));
  EXPECT_EQ(again.working_dir(), "/work/dir");
  EXPECT_EQ(again.spec().max_trials(), 12);
  std::vector<Trial> trials = again.trials();
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state, TrialState::kCompleted);
  EXPECT_EQ(trials[0].value, 2.0);
  EXPECT_EQ(trials[0].exit_code, 0);
  EXPECT_EQ(trials[0].pid, 123);
  EXPECT_TRUE(trials[0].suggestion_seconds.has_value());
  EXPECT_EQ(again.curve(id), (Curve{{1, 3.0}, {2, 2.0}}));
}

// A study made before suggestion times were recorded: a report reads its trials' times as
// unknown and changes nothing; the first claim of a driver adds the column.
TEST(StudyStore, AStudyWithoutSuggestionTimesReportsThemUnknownUntilADriverAddsThem) {
  TempDir dir;
  ASSERT_TRUE(StudyStore::create(dir.path(), make_spec(), dir.path()));
  auto has_column = [&] {
    SqliteDb db(StudyStore::database_path(dir.path()));
    StudyDb::Statement s(db, "SELECT COUNT(*) FROM pragma_table_info('trials') WHERE name = 'suggestion_seconds'");
    return s.step() && s.int64(0) == 1;
  };
  ASSERT_TRUE(has_column());
  {
    SqliteDb db(StudyStore::database_path(dir.path()));
    db.exec("ALTER TABLE trials DROP COLUMN suggestion_seconds");
    db.exec("INSERT INTO trials(number, state, params, value, created, attempts) "
            "VALUES (0, 'COMPLETED', '{\"x\": 0.5, \"k\": \"a\"}', 1.5, 1, 1)");
  }
  ASSERT_FALSE(has_column());
  StudyStore store(dir.path());
  std::vector<Trial> old = store.trials();
  ASSERT_EQ(old.size(), 1u);
  EXPECT_FALSE(old[0].suggestion_seconds.has_value());
  std::string text = study_report_text(store.spec(), old);
  EXPECT_NE(text.find("\nsuggestions: 1 made before kiln recorded their time\n"), std::string::npos) << text;
  EXPECT_NE(study_csv(store.spec(), old).find("\n0,COMPLETED,1.5,1.5,0.000,,1,"), std::string::npos) << study_csv(store.spec(), old);
  EXPECT_FALSE(has_column()) << "reading changed the study";

  auto suggester = make_suggester(store.spec());
  Trial t;
  ASSERT_EQ(store.claim_trial(store.register_driver(), *suggester, t), ClaimOutcome::kClaimed);
  ASSERT_TRUE(t.suggestion_seconds.has_value());
  EXPECT_TRUE(has_column());
  std::vector<Trial> now = StudyStore(dir.path()).trials();
  ASSERT_EQ(now.size(), 2u);
  EXPECT_FALSE(now[0].suggestion_seconds.has_value());
  EXPECT_EQ(now[1].suggestion_seconds, t.suggestion_seconds);
  text = study_report_text(store.spec(), now);
  EXPECT_NE(text.find("\nsuggestions: 1 timed, "), std::string::npos) << text;
  EXPECT_NE(text.find(" ms at most; 1 made before kiln recorded their time\n"), std::string::npos) << text;
}

TEST(StudyStore, ConcurrentDriversNeverGetTheSameSuggestion) {
  TempDir dir;
  ASSERT_TRUE(StudyStore::create(dir.path(), make_spec(), dir.path()));
  // Three drivers, each with its own connection and suggester, claim at the same time.
  std::vector<std::vector<Trial>> claimed(3);
  std::vector<std::thread> drivers;
  for (int d = 0; d < 3; ++d)
    drivers.emplace_back([&, d] {
      StudyStore store(dir.path());
      auto suggester = make_suggester(store.spec());
      int64_t driver = store.register_driver();
      Trial t;
      while (store.claim_trial(driver, *suggester, t) == ClaimOutcome::kClaimed) {
        claimed[d].push_back(t);
        store.finish_trial(t.id, TrialState::kCompleted, t.params.at("x").number, 0, "");
      }
    });
  for (auto& t : drivers) t.join();
  std::set<int64_t> numbers;
  std::set<std::string> params;
  size_t total = 0;
  for (const auto& c : claimed)
    for (const Trial& t : c) {
      numbers.insert(t.number);
      params.insert(assignment_to_json(t.params));
      ++total;
    }
  EXPECT_EQ(total, 12u);
  EXPECT_EQ(numbers.size(), 12u);
  EXPECT_EQ(*numbers.rbegin(), 11);
  EXPECT_EQ(params.size(), 12u);
}

TEST(StudyStore, ClaimRespectsParallelAndFailureLimits) {
  TempDir dir;
  StudySpec spec = make_spec();
  spec.set_max_parallel_trials(2);
  spec.set_max_failed_trials(2);
  ASSERT_TRUE(StudyStore::create(dir.path(), spec, dir.path()));
  StudyStore store(dir.path());
  auto suggester = make_suggester(store.spec());
  int64_t driver = store.register_driver();
  Trial a, b, c;
  ASSERT_EQ(store.claim_trial(driver, *suggester, a), ClaimOutcome::kClaimed);
  ASSERT_EQ(store.claim_trial(driver, *suggester, b), ClaimOutcome::kClaimed);
  EXPECT_EQ(store.claim_trial(driver, *suggester, c), ClaimOutcome::kParallelLimit);
  store.finish_trial(a.id, TrialState::kFailed, std::nullopt, 1, "exit code 1");
  ASSERT_EQ(store.claim_trial(driver, *suggester, c), ClaimOutcome::kClaimed);
  store.finish_trial(b.id, TrialState::kFailed, std::nullopt, 1, "exit code 1");
  Trial d;
  EXPECT_EQ(store.claim_trial(driver, *suggester, d), ClaimOutcome::kTooManyFailures);
}

// A driver in a child process that registers, claims a trial and dies without a word.
bool claim_a_trial_and_die(const std::string& study_dir) {
  pid_t child = fork();
  if (child == 0) {
    StudyStore store(study_dir);
    auto suggester = make_suggester(store.spec());
    Trial t;
    store.claim_trial(store.register_driver(), *suggester, t);
    _exit(0);
  }
  int status;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(StudyStore, TrialsOfADeadDriverAreRequeuedAndRunAgainUnderTheirNumber) {
  TempDir dir;
  ASSERT_TRUE(StudyStore::create(dir.path(), make_spec(), dir.path()));
  ASSERT_TRUE(claim_a_trial_and_die(dir.path()));
  StudyStore store(dir.path());
  int64_t me = store.register_driver();
  EXPECT_EQ(store.reclaim_orphans().requeued.size(), 1u);
  EXPECT_TRUE(store.reclaim_orphans().requeued.empty());  // only once
  std::vector<Trial> trials = store.trials();
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state, TrialState::kQueued);
  auto suggester = make_suggester(store.spec());
  Trial t;
  ASSERT_EQ(store.claim_trial(me, *suggester, t), ClaimOutcome::kClaimed);
  EXPECT_EQ(t.number, 0);  // the queued trial, not a new one
  EXPECT_EQ(t.attempts, 2);
  EXPECT_EQ(t.params, trials[0].params);
  // A live driver's trials are left alone.
  StudyStore::Reclaimed none = store.reclaim_orphans(me, [](Trial&, bool) { return true; });
  EXPECT_TRUE(none.requeued.empty() && none.adopted.empty());
}

// A driver that died after starting a trial's process but before recording its pid: the
// process is found by its attempt's environment entry, adopted, and its pid stored.
TEST(StudyStore, ATrialStartedButNotRecordedIsFoundByItsEnvironmentAndAdopted) {
  TempDir dir;
  ASSERT_TRUE(StudyStore::create(dir.path(), make_spec(), dir.path()));
  ASSERT_TRUE(claim_a_trial_and_die(dir.path()));
  const std::string entry = "KILN_TUNE_ATTEMPT=" + dir.path() + "#1#1";
  EXPECT_FALSE(find_group_leader_by_env(entry).has_value());
  SpawnRequest req;
  req.command = "sleep 30";
  req.stdout_path = req.stderr_path = dir.path() + "/trial.log";
  req.extra_env = {entry};
  TrialProcess p = TrialProcess::spawn(req);
  StudyStore store(dir.path());
  StudyStore::Reclaimed r = store.reclaim_orphans(store.register_driver(), [&](Trial& t, bool same_host) {
    auto leader = find_group_leader_by_env(entry);
    if (leader) t.pid = leader->first, t.pid_start = leader->second;
    return same_host && leader.has_value();
  });
  ASSERT_EQ(r.adopted.size(), 1u);
  EXPECT_TRUE(r.requeued.empty());
  EXPECT_EQ(r.adopted[0].pid, p.pid());
  std::vector<Trial> trials = store.trials();
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state, TrialState::kRunning);
  EXPECT_EQ(trials[0].pid, p.pid());
  EXPECT_EQ(trials[0].pid_start, p.start_time());
  p.signal_group(SIGKILL);
  p.wait();
}

TEST(StudyStore, CreationReplacesAnInterruptedOneAndRemovesDeadTemporaries) {
  TempDir dir;
  const std::string db = StudyStore::database_path(dir.path());
  // What an interrupted creation by an older kiln left: an empty file, then a schema without a study.
  for (bool with_schema : {false, true}) {
    std::filesystem::remove(db);
    if (with_schema) SqliteDb(db).exec("CREATE TABLE study(id INTEGER PRIMARY KEY, name TEXT)");
    else dir.file("study.db", "");
    EXPECT_FALSE(StudyStore::holds_study(dir.path()));
    EXPECT_THROW(StudyStore store(dir.path()), Error);
    // A temporary database of a creation whose process is gone (pid 2^22 + 1 is above pid_max).
    dir.file("study.db.tmp-4194305", "partial");
    dir.file("study.db.tmp-4194305-wal", "partial");
    ASSERT_TRUE(StudyStore::create(dir.path(), make_spec(), dir.path()));
    EXPECT_TRUE(StudyStore::holds_study(dir.path()));
    EXPECT_EQ(StudyStore(dir.path()).spec().max_trials(), 12);
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/study.db.tmp-4194305"));
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/study.db.tmp-4194305-wal"));
    for (const auto& e : std::filesystem::directory_iterator(dir.path()))
      EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
}

TEST(StudyStore, SqliteErrorsAreOneLine) {
  TempDir dir;
  ASSERT_TRUE(StudyStore::create(dir.path(), make_spec(), dir.path()));
  SqliteDb db(StudyStore::database_path(dir.path()));
  try {
    StudyDb::Statement s(db, "SELECT id,\n       nonsense\n  FROM trials\n WHERE  state = 'X'");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find("SELECT id, nonsense FROM trials WHERE state = 'X': no such column: nonsense"), std::string::npos) << what;
  }
  try {
    db.exec("CREATE TABLE trials(\n  x INTEGER)");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find("CREATE TABLE trials( x INTEGER): table trials already exists"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace kiln::tuning
