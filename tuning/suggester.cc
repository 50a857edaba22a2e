#include "tuning/suggester.h"

#include <random>

#include "tuning/gp_bandit.h"

namespace kiln::tuning {

namespace {

constexpr uint64_t kMaxGridPoints = 100000;

class RandomSearch final : public Suggester {
 public:
  explicit RandomSearch(const StudySpec& spec) : space_(spec), seed_(spec.seed()) {}
  std::optional<Assignment> suggest(const TrialHistory& h) override {
    return random_unused(space_, used_keys(h), mix_seed(seed_, h.trial_number));
  }

 private:
  SearchSpace space_;
  uint64_t seed_;
};

// The grid in a fixed order; each suggestion is the first point no trial has.
class GridSearch final : public Suggester {
 public:
  explicit GridSearch(const StudySpec& spec) : grid_(SearchSpace(spec).enumerate(kMaxGridPoints)) {}
  std::optional<Assignment> suggest(const TrialHistory& h) override {
    std::set<std::string> used = used_keys(h);
    for (const Assignment& a : grid_)
      if (!used.count(key_of(a))) return a;
    return std::nullopt;
  }

 private:
  std::vector<Assignment> grid_;
};

}  // namespace

std::set<std::string> used_keys(const TrialHistory& h) {
  std::set<std::string> keys;
  for (const auto& o : h.observed) keys.insert(key_of(o.params));
  for (const auto& a : h.failed) keys.insert(key_of(a));
  for (const auto& a : h.pending) keys.insert(key_of(a));
  return keys;
}

std::optional<Assignment> random_unused(const SearchSpace& space, const std::set<std::string>& used, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> x(space.dimensions());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    for (double& v : x) v = unit(rng);
    Assignment a = space.decode(x);
    if (!used.count(key_of(a))) return a;
  }
  // Nearly exhausted finite spaces: the first unused point in order.
  if (space.cardinality(kMaxGridPoints))
    for (const Assignment& a : space.enumerate(kMaxGridPoints))
      if (!used.count(key_of(a))) return a;
  return std::nullopt;
}

std::unique_ptr<Suggester> make_suggester(const StudySpec& spec) {
  switch (spec.algorithm()) {
    case StudySpec::RANDOM: return std::make_unique<RandomSearch>(spec);
    case StudySpec::GRID: return std::make_unique<GridSearch>(spec);
    default: return std::make_unique<GpBandit>(spec);
  }
}

uint64_t mix_seed(uint64_t seed, int64_t trial) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(trial),
                    static_cast<uint32_t>(static_cast<uint64_t>(trial) >> 32)};
  uint32_t words[2];
  seq.generate(words, words + 2);
  return (static_cast<uint64_t>(words[0]) << 32) | words[1];
}

}  // namespace kiln::tuning
