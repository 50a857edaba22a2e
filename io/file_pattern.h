#pragma once
// Sharded inputs: "data/train-*.csv" names every shard. Patterns use glob(3) syntax (*, ?, [...]);
// a name without wildcards must exist like any other pattern.
#include <string>
#include <vector>

namespace kiln::io {

// The files the patterns match (directories excluded), sorted by byte order and de-duplicated
// across patterns. A pattern matching no file is a kiln::Error naming it.
std::vector<std::string> expand_file_patterns(const std::vector<std::string>& patterns);

}  // namespace kiln::io
