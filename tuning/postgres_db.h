#pragma once
// A study in a PostgreSQL database (kiln tune --storage postgresql://...), so that drivers on
// several machines share it with SQLite's guarantees: every state change is a committed
// transaction, and the study's write lock (a lock on its study table, held to the end of the
// transaction) serializes claims as BEGIN IMMEDIATE does in SQLite. Each study lives in a schema
// of its own, so one database holds many studies. Statements use SQLite's ?N parameters; they
// are sent as $N with text values, the server inferring each type from its column.
#include <string>

#include "tuning/study_db.h"

struct pg_conn;

namespace kiln::tuning {

class PostgresDb final : public StudyDb {
 public:
  // Connects to `url` (a libpq connection URI: postgresql://user:password@host:port/database)
  // and works in `schema` (created by create_schema). Errors name the URL without its password.
  PostgresDb(const std::string& url, const std::string& schema);
  ~PostgresDb() override;
  PostgresDb(const PostgresDb&) = delete;
  PostgresDb& operator=(const PostgresDb&) = delete;

  Dialect dialect() const override { return Dialect::kPostgres; }
  const std::string& where() const override { return where_; }
  void exec(const std::string& sql) override;
  // Whether the schema holds a study table.
  bool schema_has_study();

 protected:
  std::unique_ptr<StatementImpl> prepare(const std::string& sql) override;
  void begin_write() override;
  void rollback() noexcept override;

 private:
  class PostgresStatement;
  [[noreturn]] void fail_with(const std::string& what) const;

  pg_conn* conn_ = nullptr;
  std::string schema_, where_;
};

// The URL with its password left out, for messages.
std::string redact_url(const std::string& url);
// The schema of the study in `study_dir`: "kiln_" and its directory name, lower-case, other
// characters as '_'.
std::string study_schema(const std::string& study_dir);

}  // namespace kiln::tuning
