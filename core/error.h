#pragma once
// Errors. kiln::Error is a user mistake (bad config, bad row, bad request) and carries a message
// that names the file, line, field or feature. KILN_CHECK guards invariants; a failure is a bug in
// Kiln and reports the source location.
#include <sstream>
#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& what) : std::logic_error(what) {}
};

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str_cat(args...));
}

namespace detail {
[[noreturn]] void check_failed(const char* file, int line, const char* expr, const std::string& msg);
}  // namespace detail

}  // namespace kiln

#define KILN_CHECK(cond, ...)                                                          \
  do {                                                                                  \
    if (!(cond)) [[unlikely]]                                                           \
      ::kiln::detail::check_failed(__FILE__, __LINE__, #cond, ::kiln::str_cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
