#pragma once
// A thin RAII layer over the SQLite C API. The database runs in WAL mode with synchronous=FULL:
// a committed transaction survives a kill -9 of the process (and a power loss), readers never
// block the writer, and concurrent writers (two drivers on one study) queue on the write lock
// for up to the busy timeout instead of failing.
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

struct sqlite3;
struct sqlite3_stmt;

namespace kiln::tuning {

class SqliteDb {
 public:
  class Statement {
   public:
    Statement(SqliteDb& db, const std::string& sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Parameters are 1-based, as in SQL's ?1.
    Statement& bind(int i, int64_t v);
    Statement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
    Statement& bind(int i, double v);
    Statement& bind(int i, const std::string& v);
    Statement& bind(int i, const char* v) { return bind(i, std::string(v)); }
    Statement& bind_null(int i);
    template <typename T>
    Statement& bind(int i, const std::optional<T>& v) {
      return v ? bind(i, *v) : bind_null(i);
    }
    // Steps once: true when a row is available.
    bool step();
    // Runs to completion (for statements without rows).
    void run();
    // Ready to run again with new bindings.
    void reset();

    bool is_null(int col) const;
    int64_t int64(int col) const;
    double real(int col) const;
    std::string text(int col) const;
    std::optional<double> optional_real(int col) const;
    std::optional<int64_t> optional_int64(int col) const;

   private:
    SqliteDb& db_;
    sqlite3_stmt* stmt_ = nullptr;
  };

  explicit SqliteDb(const std::string& path);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  void exec(const std::string& sql);
  int64_t last_insert_rowid() const;
  const std::string& path() const { return path_; }

  // Runs f inside BEGIN IMMEDIATE ... COMMIT (the write lock is taken up front, so the reads in f
  // see the state the writes in f are based on); ROLLBACK if f throws.
  template <typename F>
  auto write_transaction(F&& f) {
    exec("BEGIN IMMEDIATE");
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        exec("COMMIT");
      } else {
        auto result = f();
        exec("COMMIT");
        return result;
      }
    } catch (...) {
      rollback();
      throw;
    }
  }

 private:
  [[noreturn]] void fail_with(const std::string& what) const;
  void rollback() noexcept;

  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace kiln::tuning
