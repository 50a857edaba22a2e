#include "tuning/study_db.h"

namespace kiln::tuning {

std::string sql_one_line(const std::string& sql, size_t max_chars) {
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

}  // namespace kiln::tuning
