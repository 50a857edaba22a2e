#include "tuning/halton.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace kiln::tuning {

namespace {

std::vector<uint32_t> first_primes(size_t n) {
  std::vector<uint32_t> primes;
  for (uint32_t c = 2; primes.size() < n; ++c) {
    bool prime = true;
    for (uint32_t p : primes) {
      if (p * p > c) break;
      if (c % p == 0) {
        prime = false;
        break;
      }
    }
    if (prime) primes.push_back(c);
  }
  return primes;
}

}  // namespace

Halton::Halton(size_t dimensions, uint64_t seed) : bases_(first_primes(dimensions)) {
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
  for (uint32_t b : bases_) {
    // Enough digit levels that the last one is below double resolution.
    int levels = static_cast<int>(std::ceil(53 * std::log(2.0) / std::log(static_cast<double>(b))));
    std::vector<uint16_t> perm(static_cast<size_t>(levels) * b);
    for (int l = 0; l < levels; ++l) {
      auto first = perm.begin() + static_cast<ptrdiff_t>(l) * b;
      std::iota(first, first + b, 0);
      std::shuffle(first, first + b, rng);
    }
    perms_.push_back(std::move(perm));
    levels_.push_back(levels);
  }
}

void Halton::point(uint64_t index, double* out) const {
  for (size_t d = 0; d < bases_.size(); ++d) {
    uint32_t b = bases_[d];
    const uint16_t* perm = perms_[d].data();
    double scale = 1.0 / b, v = 0;
    uint64_t i = index;
    // All levels, including those past the index's last digit: their permuted zero digits are
    // part of the scrambled point.
    for (int l = 0; l < levels_[d]; ++l) {
      v += perm[static_cast<size_t>(l) * b + i % b] * scale;
      i /= b;
      scale /= b;
    }
    out[d] = std::min(v, std::nextafter(1.0, 0.0));
  }
}

std::vector<double> Halton::point(uint64_t index) const {
  std::vector<double> p(bases_.size());
  point(index, p.data());
  return p;
}

}  // namespace kiln::tuning
