#pragma once
// The SQL database a study lives in: SQLite (tuning/sqlite_db.h, the embedded default, one file
// per study) or PostgreSQL (tuning/postgres_db.h, shared by drivers on several machines). The
// study's SQL is written once, with SQLite's ?N parameters, and each database runs it.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace kiln::tuning {

class StudyDb {
 public:
  enum class Dialect { kSqlite, kPostgres };

  // What a database does with one statement.
  class StatementImpl {
   public:
    virtual ~StatementImpl() = default;
    virtual void bind(int i, int64_t v) = 0;
    virtual void bind(int i, double v) = 0;
    virtual void bind(int i, const std::string& v) = 0;
    virtual void bind_null(int i) = 0;
    virtual bool step() = 0;
    virtual void reset() = 0;
    virtual bool is_null(int col) const = 0;
    virtual int64_t int64(int col) const = 0;
    virtual double real(int col) const = 0;
    virtual std::string text(int col) const = 0;
  };

  class Statement {
   public:
    Statement(StudyDb& db, const std::string& sql) : impl_(db.prepare(sql)) {}
    // Parameters are 1-based, as in SQL's ?1.
    Statement& bind(int i, int64_t v) { return impl_->bind(i, v), *this; }
    Statement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
    Statement& bind(int i, double v) { return impl_->bind(i, v), *this; }
    Statement& bind(int i, const std::string& v) { return impl_->bind(i, v), *this; }
    Statement& bind(int i, const char* v) { return bind(i, std::string(v)); }
    Statement& bind_null(int i) { return impl_->bind_null(i), *this; }
    template <typename T>
    Statement& bind(int i, const std::optional<T>& v) {
      return v ? bind(i, *v) : bind_null(i);
    }
    // Steps once: true when a row is available.
    bool step() { return impl_->step(); }
    // Runs to completion (for statements without rows).
    void run() {
      while (step()) {
      }
    }
    // Ready to run again with new bindings.
    void reset() { impl_->reset(); }
    bool is_null(int col) const { return impl_->is_null(col); }
    int64_t int64(int col) const { return impl_->int64(col); }
    double real(int col) const { return impl_->real(col); }
    std::string text(int col) const { return impl_->text(col); }
    std::optional<double> optional_real(int col) const {
      return is_null(col) ? std::nullopt : std::optional<double>(real(col));
    }
    std::optional<int64_t> optional_int64(int col) const {
      return is_null(col) ? std::nullopt : std::optional<int64_t>(int64(col));
    }

   private:
    std::unique_ptr<StatementImpl> impl_;
  };

  virtual ~StudyDb() = default;
  virtual Dialect dialect() const = 0;
  // The file or the server and schema, for messages (no password).
  virtual const std::string& where() const = 0;
  virtual void exec(const std::string& sql) = 0;

  // Runs f holding the study's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a lock on the
  // study table), so the reads in f see the state the writes in f are based on; ROLLBACK if f
  // throws.
  template <typename F>
  auto write_transaction(F&& f) {
    begin_write();
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        commit();
      } else {
        auto result = f();
        commit();
        return result;
      }
    } catch (...) {
      rollback();
      throw;
    }
  }

 protected:
  virtual std::unique_ptr<StatementImpl> prepare(const std::string& sql) = 0;
  virtual void begin_write() = 0;
  void commit() { exec("COMMIT"); }  // the same SQL for SQLite and PostgreSQL
  virtual void rollback() noexcept = 0;
};

// The statement as it goes into an error message: one line, runs of whitespace as one space,
// long ones cut.
std::string sql_one_line(const std::string& sql, size_t max_chars = 120);

}  // namespace kiln::tuning
