#pragma once
// The unit-cube encoding the Gaussian process works in. Each numeric parameter is one dimension:
// its value on the parameter's scale (linear, log, reverse log) mapped to [0, 1]; integers and
// discrete values are rounded to the nearest feasible value on decoding. A categorical parameter
// is one-hot over its values. Inactive conditional parameters take a fixed encoding (0.5, or an
// all-zero one-hot), so every configuration with a child inactive looks the same in that child.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proto/study.pb.h"
#include "tuning/assignment.h"

namespace kiln::tuning {

class SearchSpace {
 public:
  struct Param {
    std::string name;
    ParameterSpec::Type type = ParameterSpec::DOUBLE;
    ParameterSpec::ScaleType scale = ParameterSpec::LINEAR;
    double min = 0, max = 1;
    std::vector<double> values;           // DISCRETE values, or every INTEGER when few
    std::vector<std::string> categories;  // CATEGORICAL
    int parent = -1;                      // index of the parent parameter, -1 when unconditional
    std::vector<ParamValue> parent_values;
    size_t offset = 0, width = 1;  // encoded dimensions [offset, offset + width)
    // Few enough values that the acquisition optimizer tries each (categorical, discrete,
    // integers with <= kMaxEnumeratedIntegers values); otherwise optimized continuously.
    bool enumerated = false;
    std::string config_field;
  };
  static constexpr int kMaxEnumeratedIntegers = 32;

  // `spec` must be valid (validate_study_spec).
  explicit SearchSpace(const StudySpec& spec);

  size_t dimensions() const { return dims_; }
  const std::vector<Param>& params() const { return params_; }

  // Active parameters only; missing active parameters are an error.
  std::vector<double> encode(const Assignment& a) const;
  // Nearest feasible assignment to a point of [0,1]^D (clamped); children of inactive parents
  // are left out.
  Assignment decode(std::span<const double> x) const;
  // x := encode(decode(x)): rounds, one-hots and fixes inactive dimensions.
  void canonicalize(std::span<double> x) const;

  bool active(const Param& p, const Assignment& a) const;

  // Number of values of an enumerated parameter; set_choice writes the k-th into x.
  size_t choice_count(size_t param) const;
  void set_choice(std::span<double> x, size_t param, size_t k) const;

  // The encoded dimensions the optimizer moves continuously.
  std::vector<size_t> continuous_dimensions() const;

  // Number of distinct assignments when every parameter is enumerated and there are at most
  // `limit`; nullopt otherwise.
  std::optional<uint64_t> cardinality(uint64_t limit) const;
  // Every distinct assignment (children only where active), in a fixed order; requires
  // cardinality(limit) to be known.
  std::vector<Assignment> enumerate(uint64_t limit) const;

  // The value's position in [0, 1] on the parameter's scale, and back (no rounding).
  double to_unit(const Param& p, double v) const;
  double from_unit(const Param& p, double u) const;

 private:
  // Calls visit for each distinct assignment; false when a parameter is not enumerated or there
  // are more than `limit`.
  bool for_each_assignment(uint64_t limit, const std::function<void(const Assignment&)>& visit) const;

  std::vector<Param> params_;
  size_t dims_ = 0;
};

}  // namespace kiln::tuning
