#include "tuning/study_store.h"

#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "tuning/postgres_db.h"
#include "tuning/search_space.h"
#include "tuning/sqlite_db.h"
#include "tuning/study_spec.h"
#include "tuning/trial_process.h"

namespace kiln::tuning {

namespace fs = std::filesystem;

namespace {

const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS study(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  name TEXT NOT NULL,
  spec TEXT NOT NULL,
  working_dir TEXT NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS drivers(
  id INTEGER PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  pid_start INTEGER NOT NULL,
  started REAL NOT NULL,
  heartbeat REAL NOT NULL,
  ended REAL);
CREATE TABLE IF NOT EXISTS trials(
  id INTEGER PRIMARY KEY,
  number INTEGER NOT NULL UNIQUE,
  state TEXT NOT NULL,
  params TEXT NOT NULL,
  value REAL,
  created REAL NOT NULL,
  started REAL NOT NULL DEFAULT 0,
  finished REAL NOT NULL DEFAULT 0,
  exit_code INTEGER,
  reason TEXT NOT NULL DEFAULT '',
  attempts INTEGER NOT NULL DEFAULT 0,
  driver_id INTEGER REFERENCES drivers(id),
  pid INTEGER,
  pid_start INTEGER,
  suggestion_seconds REAL);
CREATE TABLE IF NOT EXISTS measurements(
  trial_id INTEGER NOT NULL REFERENCES trials(id),
  step INTEGER NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (trial_id, step));
)";

const char* kTrialColumns =
    "id, number, state, params, value, created, started, finished, exit_code, reason, attempts, driver_id, pid, pid_start";
// Not in studies made by an older kiln (read as unknown there).
const char* kSuggestionColumn = "suggestion_seconds";

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The database of an existing study (SQLite would create a missing file).
std::string existing_database_path(const std::string& study_dir) {
  std::string path = StudyStore::database_path(study_dir);
  if (!fs::exists(path)) fail("no study in ", study_dir, " (no ", path, ")");
  return path;
}

std::string host_name() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

TrialState parse_state(const std::string& s) {
  for (TrialState t : {TrialState::kQueued, TrialState::kRunning, TrialState::kCompleted, TrialState::kFailed, TrialState::kStopped})
    if (s == trial_state_name(t)) return t;
  fail("study database: unknown trial state '", s, "'");
}

}  // namespace

const char* trial_state_name(TrialState s) {
  switch (s) {
    case TrialState::kQueued: return "QUEUED";
    case TrialState::kRunning: return "RUNNING";
    case TrialState::kCompleted: return "COMPLETED";
    case TrialState::kFailed: return "FAILED";
    case TrialState::kStopped: return "STOPPED";
  }
  return "?";
}

std::string StudyStore::database_path(const std::string& study_dir) { return study_dir + "/study.db"; }

namespace {

bool database_holds_study(SqliteDb& db) {
  StudyDb::Statement t(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'study'");
  if (!t.step() || t.int64(0) == 0) return false;
  StudyDb::Statement s(db, "SELECT COUNT(*) FROM study");
  return s.step() && s.int64(0) > 0;
}

// A database file and the journal files SQLite keeps beside it.
void remove_database_files(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path + suffix, ec);
}

// Temporary databases left by creations whose process is gone (killed, or a full disk).
void remove_stale_temporaries(const std::string& study_dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(study_dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("study.db.tmp-", 0) != 0) continue;
    long pid = std::strtol(name.c_str() + 13, nullptr, 10);
    if (io::process_exists(pid)) continue;
    fs::remove(e.path(), ec);
  }
}

// The study's one row.
void insert_study(StudyDb& db, const StudySpec& spec, const std::string& text, const std::string& working_dir) {
  StudyDb::Statement(db, "INSERT INTO study(id, name, spec, working_dir, created) VALUES (1, ?1, ?2, ?3, ?4)")
      .bind(1, spec.name())
      .bind(2, text)
      .bind(3, working_dir)
      .bind(4, now_seconds())
      .run();
}

// The study tables in PostgreSQL's types: 64-bit integers, doubles, and generated ids.
std::string postgres_schema() {
  std::string sql = kSchema;
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (size_t at = sql.find(from); at != std::string::npos; at = sql.find(from, at + to.size())) sql.replace(at, from.size(), to);
  };
  replace_all("id INTEGER PRIMARY KEY,", "id BIGSERIAL PRIMARY KEY,");
  replace_all("INTEGER", "BIGINT");
  replace_all("REAL", "DOUBLE PRECISION");
  return sql;
}

bool is_postgres(const std::string& storage) {
  if (storage.empty()) return false;
  if (storage.rfind("postgresql://", 0) == 0 || storage.rfind("postgres://", 0) == 0) return true;
  fail("--storage ", redact_url(storage), ": not a postgresql:// URL (leave it out for SQLite in the study directory)");
}

// One transaction: the schema, its tables and the study, or nothing (PostgreSQL's DDL is
// transactional). An advisory lock on the schema's name makes a second creator wait and then
// find the study.
bool create_in_postgres(const std::string& storage, const std::string& study_dir, const StudySpec& spec,
                        const std::string& working_dir, const std::string& text) {
  const std::string schema = study_schema(study_dir);
  PostgresDb db(storage, schema);
  db.exec("BEGIN");
  try {
    StudyDb::Statement(db, "SELECT pg_advisory_xact_lock(hashtext(?1::text))").bind(1, "kiln study " + schema).run();
    if (db.schema_has_study()) {
      db.exec("ROLLBACK");
      return false;
    }
    db.exec("CREATE SCHEMA IF NOT EXISTS \"" + schema + "\"");
    db.exec(postgres_schema());
    insert_study(db, spec, text, working_dir);
    db.exec("COMMIT");
  } catch (...) {
    try {
      db.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
  return true;
}

}  // namespace

bool StudyStore::holds_study(const std::string& study_dir, const std::string& storage) {
  if (is_postgres(storage)) return PostgresDb(storage, study_schema(study_dir)).schema_has_study();
  std::string path = database_path(study_dir);
  if (!fs::exists(path)) return false;
  SqliteDb db(path);
  return database_holds_study(db);
}

bool StudyStore::create(const std::string& study_dir, const StudySpec& spec, const std::string& working_dir,
                        const std::string& storage) {
  std::error_code ec;
  fs::create_directories(study_dir, ec);
  if (ec) fail("cannot create study directory ", study_dir, ": ", ec.message());
  if (is_postgres(storage)) {
    std::string text;
    google::protobuf::TextFormat::PrintToString(spec, &text);
    return create_in_postgres(storage, study_dir, spec, working_dir, text);
  }
  const std::string path = database_path(study_dir);
  if (holds_study(study_dir)) return false;
  remove_stale_temporaries(study_dir);
  const std::string temp = str_cat(path, ".tmp-", ::getpid());
  remove_database_files(temp);
  try {
    std::string text;
    google::protobuf::TextFormat::PrintToString(spec, &text);
    {
      SqliteDb db(temp);
      db.write_transaction([&] {
        db.exec(kSchema);
        insert_study(db, spec, text, working_dir);
      });
      // Everything into the main file: the rename below moves that file alone.
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    io::fsync_file(temp);
    // A study.db that exists now holds no study (checked above): an interrupted creation.
    if (fs::exists(path) && !holds_study(study_dir)) remove_database_files(path);
    if (!io::rename_no_replace(temp, path)) {
      remove_database_files(temp);
      return false;  // another driver created it first
    }
    io::fsync_directory(study_dir);
  } catch (...) {
    remove_database_files(temp);
    throw;
  }
  remove_database_files(temp);  // the -wal and -shm of the closed connection, if any are left
  return true;
}

StudyStore::StudyStore(const std::string& study_dir, const std::string& storage) {
  if (is_postgres(storage)) {
    auto db = std::make_unique<PostgresDb>(storage, study_schema(study_dir));
    if (!db->schema_has_study()) fail("no study in ", db->where());
    db_ = std::move(db);
  } else {
    auto db = std::make_unique<SqliteDb>(existing_database_path(study_dir));
    if (!database_holds_study(*db)) fail(db->path(), " holds no study");
    db_ = std::move(db);
  }
  // Reading leaves an older study as it is (a report may be on a read-only copy); the first
  // claim adds the column.
  suggestion_column_ = has_suggestion_column();
}

bool StudyStore::has_suggestion_column() {
  if (db_->dialect() == StudyDb::Dialect::kPostgres) return true;  // PostgreSQL studies were created with it
  StudyDb::Statement s(*db_, "SELECT COUNT(*) FROM pragma_table_info('trials') WHERE name = ?1");
  s.bind(1, kSuggestionColumn);
  return s.step() && s.int64(0) > 0;
}

void StudyStore::add_suggestion_column() {
  // Checked again under the write lock: another driver may have added it since.
  db_->write_transaction([&] {
    if (!has_suggestion_column()) db_->exec(str_cat("ALTER TABLE trials ADD COLUMN ", kSuggestionColumn, " REAL"));
  });
  suggestion_column_ = true;
}

std::string StudyStore::trial_columns() const {
  return str_cat(kTrialColumns, ", ", suggestion_column_ ? kSuggestionColumn : "NULL");
}

StudySpec StudyStore::spec() {
  if (spec_loaded_) return spec_;
  StudyDb::Statement s(*db_, "SELECT spec FROM study WHERE id = 1");
  if (!s.step()) fail(db_->where(), " holds no study");
  if (!google::protobuf::TextFormat::ParseFromString(s.text(0), &spec_)) fail(db_->where(), ": the stored spec does not parse");
  spec_loaded_ = true;
  return spec_;
}

void StudyStore::update_spec(const StudySpec& spec) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(spec, &text);
  StudyDb::Statement(*db_, "UPDATE study SET spec = ?1 WHERE id = 1").bind(1, text).run();
  spec_ = spec;
  spec_loaded_ = true;
}

std::string StudyStore::working_dir() {
  StudyDb::Statement s(*db_, "SELECT working_dir FROM study WHERE id = 1");
  if (!s.step()) fail(db_->where(), " holds no study");
  return s.text(0);
}

int64_t StudyStore::register_driver() {
  pid_t pid = getpid();
  double now = now_seconds();
  StudyDb::Statement s(*db_,
                      "INSERT INTO drivers(host, pid, pid_start, started, heartbeat) VALUES (?1, ?2, ?3, ?4, ?4) "
                      "RETURNING id");
  s.bind(1, host_name()).bind(2, static_cast<int64_t>(pid)).bind(3, process_start_time(pid)).bind(4, now);
  if (!s.step()) fail(db_->where(), ": no id for the new driver");
  return s.int64(0);
}

void StudyStore::heartbeat(int64_t driver_id) {
  StudyDb::Statement(*db_, "UPDATE drivers SET heartbeat = ?1 WHERE id = ?2").bind(1, now_seconds()).bind(2, driver_id).run();
}

void StudyStore::unregister_driver(int64_t driver_id) {
  StudyDb::Statement(*db_, "UPDATE drivers SET ended = ?1 WHERE id = ?2").bind(1, now_seconds()).bind(2, driver_id).run();
}

Trial StudyStore::read_trial(StudyDb::Statement& s) const {
  Trial t;
  t.id = s.int64(0);
  t.number = s.int64(1);
  t.state = parse_state(s.text(2));
  t.params = assignment_from_json(s.text(3));
  t.value = s.optional_real(4);
  t.created = s.real(5);
  t.started = s.real(6);
  t.finished = s.real(7);
  t.exit_code = s.optional_int64(8);
  t.reason = s.text(9);
  t.attempts = s.int64(10);
  t.driver_id = s.optional_int64(11);
  t.pid = s.optional_int64(12);
  t.pid_start = s.optional_int64(13);
  t.suggestion_seconds = s.optional_real(14);
  return t;
}

std::vector<Trial> StudyStore::trials_locked() {
  StudyDb::Statement s(*db_, "SELECT " + trial_columns() + " FROM trials ORDER BY number");
  std::vector<Trial> out;
  while (s.step()) out.push_back(read_trial(s));
  return out;
}

std::vector<Trial> StudyStore::trials() { return trials_locked(); }

StudyStore::Reclaimed StudyStore::reclaim_orphans(int64_t driver_id, const AdoptFn& adopt, double stale_seconds) {
  return db_->write_transaction([&] {
    std::string host = host_name();
    double now = now_seconds();
    StudyDb::Statement s(*db_,
                          "SELECT t.id, d.host, d.pid, d.pid_start, d.heartbeat, d.ended FROM trials t "
                          "LEFT JOIN drivers d ON t.driver_id = d.id WHERE t.state = 'RUNNING'");
    std::vector<std::pair<int64_t, bool>> orphans;  // (trial id, its driver ran on this host)
    while (s.step()) {
      bool gone, local = !s.is_null(1) && s.text(1) == host;
      if (s.is_null(1)) {
        gone = true;
      } else if (!s.is_null(5)) {
        gone = true;  // the driver ended without finishing it
      } else if (local) {
        gone = !process_alive(static_cast<pid_t>(s.int64(2)), s.int64(3));
      } else {
        gone = now - s.real(4) > stale_seconds;
      }
      if (gone) orphans.emplace_back(s.int64(0), local);
    }
    Reclaimed out;
    for (auto [id, local] : orphans) {
      StudyDb::Statement q(*db_, "SELECT " + trial_columns() + " FROM trials WHERE id = ?1");
      q.bind(1, id);
      if (!q.step()) continue;
      Trial t = read_trial(q);
      if (adopt && driver_id > 0 && adopt(t, local)) {
        StudyDb::Statement(*db_, "UPDATE trials SET driver_id = ?1, pid = ?3, pid_start = ?4 WHERE id = ?2")
            .bind(1, driver_id)
            .bind(2, id)
            .bind(3, t.pid)
            .bind(4, t.pid_start)
            .run();
        out.adopted.push_back(std::move(t));
        continue;
      }
      StudyDb::Statement(*db_, "UPDATE trials SET state = 'QUEUED', reason = ?1 WHERE id = ?2")
          .bind(1, "requeued: its driver ended while it ran")
          .bind(2, id)
          .run();
      out.requeued.push_back(std::move(t));
    }
    return out;
  });
}

ClaimOutcome StudyStore::claim_trial(int64_t driver_id, Suggester& suggester, Trial& claimed) {
  StudySpec spec = this->spec();
  int64_t budget = spec.max_trials();
  if (budget == 0) budget = static_cast<int64_t>(SearchSpace(spec).cardinality(UINT64_MAX).value_or(0));
  if (!suggestion_column_) add_suggestion_column();
  return db_->write_transaction([&] {
    std::vector<Trial> all = trials_locked();
    int running = 0, failed = 0;
    const Trial* queued = nullptr;
    TrialHistory history;
    for (const Trial& t : all) {
      switch (t.state) {
        case TrialState::kRunning:
          ++running;
          history.pending.push_back(t.params);
          break;
        case TrialState::kQueued:
          if (!queued) queued = &t;
          history.pending.push_back(t.params);
          break;
        case TrialState::kFailed:
          ++failed;
          history.failed.push_back(t.params);
          break;
        default:
          if (t.value) history.observed.push_back({t.params, *t.value});
          else history.failed.push_back(t.params);
      }
      history.trial_number = t.number + 1;
    }
    if (failed >= effective_max_failed_trials(spec)) return ClaimOutcome::kTooManyFailures;
    if (running >= spec.max_parallel_trials()) return ClaimOutcome::kParallelLimit;
    if (queued) {
      StudyDb::Statement(*db_, "UPDATE trials SET state = 'RUNNING', driver_id = ?1, attempts = attempts + 1, pid = NULL, "
                               "pid_start = NULL WHERE id = ?2")
          .bind(1, driver_id)
          .bind(2, queued->id)
          .run();
      claimed = *queued;
      claimed.state = TrialState::kRunning;
      claimed.driver_id = driver_id;
      ++claimed.attempts;
      return ClaimOutcome::kClaimed;
    }
    if (static_cast<int64_t>(all.size()) >= budget) return ClaimOutcome::kBudgetSpent;
    const auto asked = std::chrono::steady_clock::now();
    std::optional<Assignment> next = suggester.suggest(history);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
    if (!next) return ClaimOutcome::kSpaceExhausted;
    double now = now_seconds();
    StudyDb::Statement insert(*db_,
                              "INSERT INTO trials(number, state, params, created, attempts, driver_id, "
                              "suggestion_seconds) VALUES (?1, 'RUNNING', ?2, ?3, 1, ?4, ?5) RETURNING id");
    insert.bind(1, history.trial_number).bind(2, assignment_to_json(*next)).bind(3, now).bind(4, driver_id).bind(5, took);
    if (!insert.step()) fail(db_->where(), ": no id for the new trial");
    claimed = Trial{};
    claimed.id = insert.int64(0);
    claimed.number = history.trial_number;
    claimed.state = TrialState::kRunning;
    claimed.params = *next;
    claimed.created = now;
    claimed.attempts = 1;
    claimed.driver_id = driver_id;
    claimed.suggestion_seconds = took;
    return ClaimOutcome::kClaimed;
  });
}

void StudyStore::set_process(int64_t trial_id, int64_t pid, int64_t pid_start, double started) {
  StudyDb::Statement(*db_, "UPDATE trials SET pid = ?1, pid_start = ?2, started = ?3 WHERE id = ?4")
      .bind(1, pid)
      .bind(2, pid_start)
      .bind(3, started)
      .bind(4, trial_id)
      .run();
}

void StudyStore::add_measurements(int64_t trial_id, const std::vector<MetricPoint>& points) {
  if (points.empty()) return;
  db_->write_transaction([&] {
    StudyDb::Statement s(*db_, "INSERT INTO measurements(trial_id, step, value) VALUES (?1, ?2, ?3) "
                                   "ON CONFLICT (trial_id, step) DO UPDATE SET value = excluded.value");
    for (const auto& [step, value] : points) {
      s.bind(1, trial_id).bind(2, step).bind(3, value);
      s.run();
      s.reset();
    }
  });
}

void StudyStore::finish_trial(int64_t trial_id, TrialState state, std::optional<double> value,
                              std::optional<int64_t> exit_code, const std::string& reason) {
  StudyDb::Statement(*db_, "UPDATE trials SET state = ?1, value = ?2, exit_code = ?3, reason = ?4, finished = ?5 WHERE id = ?6")
      .bind(1, trial_state_name(state))
      .bind(2, value)
      .bind(3, exit_code)
      .bind(4, reason)
      .bind(5, now_seconds())
      .bind(6, trial_id)
      .run();
}

void StudyStore::requeue(int64_t trial_id, const std::string& reason) {
  StudyDb::Statement(*db_, "UPDATE trials SET state = 'QUEUED', reason = ?1 WHERE id = ?2").bind(1, reason).bind(2, trial_id).run();
}

std::vector<std::pair<int64_t, Curve>> StudyStore::curves(TrialState state) {
  StudyDb::Statement s(*db_,
                        "SELECT m.trial_id, m.step, m.value FROM measurements m JOIN trials t ON t.id = m.trial_id "
                        "WHERE t.state = ?1 ORDER BY m.trial_id, m.step");
  s.bind(1, trial_state_name(state));
  std::vector<std::pair<int64_t, Curve>> out;
  while (s.step()) {
    if (out.empty() || out.back().first != s.int64(0)) out.emplace_back(s.int64(0), Curve{});
    out.back().second.emplace_back(s.int64(1), s.real(2));
  }
  return out;
}

Curve StudyStore::curve(int64_t trial_id) {
  StudyDb::Statement s(*db_, "SELECT step, value FROM measurements WHERE trial_id = ?1 ORDER BY step");
  s.bind(1, trial_id);
  Curve c;
  while (s.step()) c.emplace_back(s.int64(0), s.real(1));
  return c;
}

}  // namespace kiln::tuning
