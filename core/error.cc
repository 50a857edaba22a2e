#include "core/error.h"

namespace kiln::detail {

void check_failed(const char* file, int line, const char* expr, const std::string& msg) {
  std::string what = str_cat(file, ":", line, ": check failed: ", expr);
  if (!msg.empty()) what += str_cat(": ", msg);
  throw InternalError(what);
}

}  // namespace kiln::detail
