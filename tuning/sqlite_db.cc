#include "tuning/sqlite_db.h"

#include <sqlite3.h>

#include "core/error.h"

namespace kiln::tuning {

namespace {
constexpr int kBusyTimeoutMs = 120000;  // a driver holds the write lock for one suggestion (< 1 s)
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
  fail("study database ", path_, ": ", sql_one_line(what), ": ", sql_one_line(sqlite3_errmsg(db_)));
}

void SqliteDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    fail("study database ", path_, ": ", sql_one_line(sql), ": ", sql_one_line(msg));
  }
}

void SqliteDb::rollback() noexcept { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

class SqliteDb::SqliteStatement final : public StatementImpl {
 public:
  SqliteStatement(const SqliteDb& db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db.db_, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) db.fail_with("prepare " + sql);
  }
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }
  void bind(int i, int64_t v) override { check(sqlite3_bind_int64(stmt_, i, v)); }
  void bind(int i, double v) override { check(sqlite3_bind_double(stmt_, i, v)); }
  void bind(int i, const std::string& v) override {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void bind_null(int i) override { check(sqlite3_bind_null(stmt_, i)); }
  bool step() override {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_.fail_with("step");
  }
  void reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  bool is_null(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t int64(int col) const override { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const override { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) const override {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }

 private:
  void check(int rc) const {
    if (rc != SQLITE_OK) db_.fail_with("bind");
  }
  const SqliteDb& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

std::unique_ptr<StudyDb::StatementImpl> SqliteDb::prepare(const std::string& sql) {
  return std::make_unique<SqliteStatement>(*this, sql);
}

}  // namespace kiln::tuning
