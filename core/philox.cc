#include "core/philox.h"

#include <cmath>
#include <numbers>

namespace kiln {

double PhiloxGenerator::normal() {
  // (u + 0.5) / 2^32 keeps u1 away from 0 so log() stays finite.
  double u1 = (static_cast<double>(next_u32()) + 0.5) / 4294967296.0;
  double u2 = (static_cast<double>(next_u32()) + 0.5) / 4294967296.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

uint64_t PhiloxGenerator::below(uint64_t n) {
  if (n <= 1) return 0;
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = next_u64();
  } while (x >= limit);
  return x % n;
}

}  // namespace kiln
