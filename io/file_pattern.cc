#include "io/file_pattern.h"

#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace kiln::io {
namespace {

struct GlobResult {
  glob_t g{};
  ~GlobResult() { globfree(&g); }
};

bool is_directory(const char* path) {
  struct stat st;
  return ::stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::vector<std::string> expand_file_patterns(const std::vector<std::string>& patterns) {
  std::vector<std::string> files;
  for (const std::string& pattern : patterns) {
    if (pattern.empty()) fail("empty file pattern");
    GlobResult result;
    errno = 0;
    // GLOB_NOSORT: everything is sorted once below, across patterns.
    int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &result.g);
    if (rc == GLOB_NOSPACE) fail("file pattern '", pattern, "': out of memory while expanding it");
    if (rc == GLOB_ABORTED)
      fail("file pattern '", pattern, "': cannot read a directory: ", errno ? std::strerror(errno) : "read error");
    size_t matched = 0;
    if (rc == 0) {
      for (size_t i = 0; i < result.g.gl_pathc; ++i) {
        const char* path = result.g.gl_pathv[i];
        if (is_directory(path)) continue;
        files.emplace_back(path);
        ++matched;
      }
    }
    // A literal name that happens to contain glob characters ("run[1].csv") still names itself.
    if (matched == 0 && rc == GLOB_NOMATCH && ::access(pattern.c_str(), F_OK) == 0 &&
        !is_directory(pattern.c_str())) {
      files.push_back(pattern);
      ++matched;
    }
    if (matched == 0) fail("file pattern '", pattern, "' matches no files");
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

}  // namespace kiln::io
