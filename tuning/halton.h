#pragma once
// Scrambled Halton sequence: low-discrepancy points in [0,1)^D for the initial design and the
// acquisition optimizer's candidates. Dimension d uses the d-th prime as base; each digit level
// of each dimension has its own random permutation of the digits (from the seed), which breaks
// the correlation between dimensions with large prime bases that plain Halton suffers from.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::tuning {

class Halton {
 public:
  Halton(size_t dimensions, uint64_t seed);
  size_t dimensions() const { return bases_.size(); }
  // The index-th point (any index; consecutive indices fill the cube evenly).
  void point(uint64_t index, double* out) const;
  std::vector<double> point(uint64_t index) const;

 private:
  std::vector<uint32_t> bases_;
  // perms_[d][level * base + digit]
  std::vector<std::vector<uint16_t>> perms_;
  std::vector<int> levels_;
};

}  // namespace kiln::tuning
