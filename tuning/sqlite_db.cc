#include "tuning/sqlite_db.h"

#include <sqlite3.h>

#include "core/error.h"

namespace kiln::tuning {

namespace {
constexpr int kBusyTimeoutMs = 120000;  // a driver holds the write lock for one suggestion (< 1 s)

// The statement as it goes into an error message: errors are one line, and the schema and
// queries are written across several, so runs of whitespace become one space; long ones are cut.
std::string one_line(const std::string& sql, size_t max_chars = 120) {
  std::string out;
  for (char c : sql) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > max_chars) out = out.substr(0, max_chars) + "...";
  return out;
}
}  // namespace

SqliteDb::SqliteDb(const std::string& path) : path_(path) {
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    fail("cannot open study database ", path, ": ", msg);
  }
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("PRAGMA foreign_keys=ON");
}

SqliteDb::~SqliteDb() { sqlite3_close(db_); }

void SqliteDb::fail_with(const std::string& what) const {
  fail("study database ", path_, ": ", one_line(what), ": ", one_line(sqlite3_errmsg(db_)));
}

void SqliteDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    fail("study database ", path_, ": ", one_line(sql), ": ", one_line(msg));
  }
}

void SqliteDb::rollback() noexcept { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

int64_t SqliteDb::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

SqliteDb::Statement::Statement(SqliteDb& db, const std::string& sql) : db_(db) {
  if (sqlite3_prepare_v2(db.db_, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) db.fail_with("prepare " + sql);
}

SqliteDb::Statement::~Statement() { sqlite3_finalize(stmt_); }

SqliteDb::Statement& SqliteDb::Statement::bind(int i, int64_t v) {
  if (sqlite3_bind_int64(stmt_, i, v) != SQLITE_OK) db_.fail_with("bind");
  return *this;
}

SqliteDb::Statement& SqliteDb::Statement::bind(int i, double v) {
  if (sqlite3_bind_double(stmt_, i, v) != SQLITE_OK) db_.fail_with("bind");
  return *this;
}

SqliteDb::Statement& SqliteDb::Statement::bind(int i, const std::string& v) {
  if (sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK) db_.fail_with("bind");
  return *this;
}

SqliteDb::Statement& SqliteDb::Statement::bind_null(int i) {
  if (sqlite3_bind_null(stmt_, i) != SQLITE_OK) db_.fail_with("bind");
  return *this;
}

bool SqliteDb::Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail_with("step");
}

void SqliteDb::Statement::run() {
  while (step()) {
  }
}

void SqliteDb::Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool SqliteDb::Statement::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
int64_t SqliteDb::Statement::int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double SqliteDb::Statement::real(int col) const { return sqlite3_column_double(stmt_, col); }

std::string SqliteDb::Statement::text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
}

std::optional<double> SqliteDb::Statement::optional_real(int col) const {
  if (is_null(col)) return std::nullopt;
  return real(col);
}

std::optional<int64_t> SqliteDb::Statement::optional_int64(int col) const {
  if (is_null(col)) return std::nullopt;
  return int64(col);
}

}  // namespace kiln::tuning
