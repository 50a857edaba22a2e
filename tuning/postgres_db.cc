#include "tuning/postgres_db.h"

#include <libpq-fe.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/error.h"

namespace kiln::tuning {

std::string redact_url(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t at = url.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos) return url;
  const size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + ":***" + url.substr(at);
}

std::string study_schema(const std::string& study_dir) {
  std::string name = std::filesystem::path(study_dir).lexically_normal().filename().string();
  if (name.empty() || name == ".") name = std::filesystem::path(study_dir).lexically_normal().parent_path().filename().string();
  std::string schema = "kiln_";
  for (char c : name) schema += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  return schema.substr(0, 63);  // PostgreSQL's identifier limit
}

// A statement: ?N become $N; run at the first step with every parameter as text; rows are read
// from the whole result.
class PostgresDb::PostgresStatement final : public StatementImpl {
 public:
  PostgresStatement(PostgresDb& db, const std::string& sql) : db_(db) {
    for (size_t i = 0; i < sql.size(); ++i) sql_ += sql[i] == '?' ? '$' : sql[i];
    for (size_t i = 0; i + 1 < sql_.size(); ++i)
      if (sql_[i] == '$' && std::isdigit(static_cast<unsigned char>(sql_[i + 1])))
        params_ = std::max(params_, std::atoi(sql_.c_str() + i + 1));
    values_.resize(static_cast<size_t>(params_));
    null_.assign(static_cast<size_t>(params_), true);
  }
  ~PostgresStatement() override { PQclear(result_); }
  void bind(int i, int64_t v) override { set(i, std::to_string(v)); }
  void bind(int i, double v) override {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    set(i, buf);
  }
  void bind(int i, const std::string& v) override { set(i, v); }
  void bind_null(int i) override {
    check_index(i);
    null_[static_cast<size_t>(i - 1)] = true;
  }
  bool step() override {
    if (!result_) execute();
    return ++row_ < PQntuples(result_);
  }
  void reset() override {
    PQclear(result_);
    result_ = nullptr;
    row_ = -1;
    null_.assign(null_.size(), true);
  }
  bool is_null(int col) const override { return PQgetisnull(result_, row_, col); }
  int64_t int64(int col) const override { return std::strtoll(PQgetvalue(result_, row_, col), nullptr, 10); }
  double real(int col) const override { return std::strtod(PQgetvalue(result_, row_, col), nullptr); }
  std::string text(int col) const override {
    return std::string(PQgetvalue(result_, row_, col), static_cast<size_t>(PQgetlength(result_, row_, col)));
  }

 private:
  void check_index(int i) const {
    if (i < 1 || i > params_) fail("study database ", db_.where(), ": parameter ", i, " of ", sql_one_line(sql_));
  }
  void set(int i, std::string v) {
    check_index(i);
    values_[static_cast<size_t>(i - 1)] = std::move(v);
    null_[static_cast<size_t>(i - 1)] = false;
  }
  void execute() {
    std::vector<const char*> p(static_cast<size_t>(params_));
    for (size_t k = 0; k < p.size(); ++k) p[k] = null_[k] ? nullptr : values_[k].c_str();
    result_ = PQexecParams(db_.conn_, sql_.c_str(), params_, nullptr, p.data(), nullptr, nullptr, 0);
    const ExecStatusType st = PQresultStatus(result_);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) db_.fail_with(sql_);
  }

  PostgresDb& db_;
  std::string sql_;
  int params_ = 0;
  std::vector<std::string> values_;
  std::vector<bool> null_;
  PGresult* result_ = nullptr;
  int row_ = -1;
};

PostgresDb::PostgresDb(const std::string& url, const std::string& schema)
    : schema_(schema), where_(redact_url(url) + " (schema " + schema + ")") {
  conn_ = PQconnectdb(url.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string msg = sql_one_line(PQerrorMessage(conn_), 300);
    PQfinish(conn_);
    conn_ = nullptr;
    fail("cannot connect to the study database ", redact_url(url), ": ", msg);
  }
  exec("SET client_min_messages = warning");
  exec("SET search_path TO \"" + schema_ + "\"");
}

PostgresDb::~PostgresDb() { PQfinish(conn_); }

void PostgresDb::fail_with(const std::string& what) const {
  fail("study database ", where_, ": ", sql_one_line(what), ": ", sql_one_line(PQerrorMessage(conn_), 300));
}

void PostgresDb::exec(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  PQclear(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail_with(sql);
}

void PostgresDb::begin_write() {
  exec("BEGIN");
  // Writers queue here until the holder commits, as on SQLite's write lock; readers do not.
  exec("LOCK TABLE study IN SHARE ROW EXCLUSIVE MODE");
}

void PostgresDb::rollback() noexcept { PQclear(PQexec(conn_, "ROLLBACK")); }

bool PostgresDb::schema_has_study() {
  Statement s(*this, "SELECT to_regclass(?1) IS NOT NULL");
  s.bind(1, "\"" + schema_ + "\".study");
  if (!s.step() || s.text(0) != "t") return false;
  Statement n(*this, "SELECT COUNT(*) FROM study");
  return n.step() && n.int64(0) > 0;
}

std::unique_ptr<StudyDb::StatementImpl> PostgresDb::prepare(const std::string& sql) {
  return std::make_unique<PostgresStatement>(*this, sql);
}

}  // namespace kiln::tuning
