#pragma once
// Suggesters turn a study's history into the next trial's parameters: the GP bandit (default),
// random search and grid search. Every suggester rejects duplicates: it never returns parameters
// that an existing trial (completed, failed, stopped or pending) already has.
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "proto/study.pb.h"
#include "tuning/assignment.h"
#include "tuning/search_space.h"

namespace kiln::tuning {

struct TrialHistory {
  struct Observation {
    Assignment params;
    double value;  // the metric as reported (the suggester applies the goal)
  };
  std::vector<Observation> observed;  // completed, and stopped with their last value
  std::vector<Assignment> failed;
  std::vector<Assignment> pending;    // running or queued: no value yet
  int64_t trial_number = 0;           // the number the suggested trial will get
};

class Suggester {
 public:
  virtual ~Suggester() = default;
  // nullopt when no unused point is left (a finite space fully tried).
  virtual std::optional<Assignment> suggest(const TrialHistory& history) = 0;
};

std::unique_ptr<Suggester> make_suggester(const StudySpec& spec);

// The parameters of every trial in `h`, as keys for duplicate checks.
std::set<std::string> used_keys(const TrialHistory& h);
inline std::string key_of(const Assignment& a) { return assignment_to_json(a); }

// Mixes the study seed and a trial number into one seed, so that a trial's random draws do not
// depend on which driver makes them.
uint64_t mix_seed(uint64_t seed, int64_t trial);

// A uniformly random point of the encoding (log scales uniform in log), decoded, avoiding `used`
// (in a nearly exhausted finite space, the first unused point); nullopt if none is left.
std::optional<Assignment> random_unused(const SearchSpace& space, const std::set<std::string>& used, uint64_t seed);

}  // namespace kiln::tuning
