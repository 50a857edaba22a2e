#pragma once
// A study in a SQLite file. The database runs in WAL mode with synchronous=FULL: a committed
// transaction survives a kill -9 of the process (and a power loss), readers never block the
// writer, and concurrent writers (two drivers on one study) queue on the write lock for up to the
// busy timeout instead of failing.
#include <string>

#include "tuning/study_db.h"

struct sqlite3;

namespace kiln::tuning {

class SqliteDb final : public StudyDb {
 public:
  explicit SqliteDb(const std::string& path);
  ~SqliteDb() override;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  Dialect dialect() const override { return Dialect::kSqlite; }
  const std::string& where() const override { return path_; }
  void exec(const std::string& sql) override;
  const std::string& path() const { return path_; }

 protected:
  std::unique_ptr<StatementImpl> prepare(const std::string& sql) override;
  void begin_write() override { exec("BEGIN IMMEDIATE"); }
  void rollback() noexcept override;

 private:
  class SqliteStatement;
  [[noreturn]] void fail_with(const std::string& what) const;

  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace kiln::tuning
