#include "tuning/search_space.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "core/error.h"

namespace kiln::tuning {

namespace {

constexpr double kInactiveNumeric = 0.5;

ParamValue parse_parent_value(const SearchSpace::Param& parent, const std::string& text) {
  if (parent.type == ParameterSpec::CATEGORICAL) return ParamValue::of(text);
  return ParamValue::of(std::stod(text));
}

// Suggested reals keep 6 significant digits: what a trial's command line and the tables show is
// then the exact value tried, and 1e-6 relative is far below what any objective resolves.
double round_significant(double v, const SearchSpace::Param& p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::clamp(std::strtod(buf, nullptr), p.min, p.max);
}

}  // namespace

SearchSpace::SearchSpace(const StudySpec& spec) {
  for (const ParameterSpec& ps : spec.params()) {
    Param p;
    p.name = ps.parameter_name();
    p.type = ps.type();
    p.scale = ps.scale_type() == ParameterSpec::SCALE_TYPE_UNSPECIFIED ? ParameterSpec::LINEAR : ps.scale_type();
    p.config_field = ps.has_config_field() ? ps.config_field() : ps.parameter_name();
    p.offset = dims_;
    switch (p.type) {
      case ParameterSpec::DOUBLE:
        p.min = ps.min_value();
        p.max = ps.max_value();
        break;
      case ParameterSpec::INTEGER:
        p.min = ps.min_value();
        p.max = ps.max_value();
        if (p.max - p.min + 1 <= kMaxEnumeratedIntegers) {
          for (double v = p.min; v <= p.max; v += 1) p.values.push_back(v);
          p.enumerated = true;
        }
        break;
      case ParameterSpec::DISCRETE:
        p.values.assign(ps.discrete_values().begin(), ps.discrete_values().end());
        p.min = p.values.front();
        p.max = p.values.back();
        p.enumerated = true;
        break;
      case ParameterSpec::CATEGORICAL:
        p.categories.assign(ps.categorical_values().begin(), ps.categorical_values().end());
        p.width = p.categories.size();
        p.enumerated = true;
        break;
      default:
        KILN_CHECK(false, "unvalidated parameter type");
    }
    if (!ps.parent_parameter().empty()) {
      for (size_t j = 0; j < params_.size(); ++j)
        if (params_[j].name == ps.parent_parameter()) p.parent = static_cast<int>(j);
      KILN_CHECK(p.parent >= 0, "unvalidated parent");
      for (const std::string& v : ps.parent_values()) p.parent_values.push_back(parse_parent_value(params_[p.parent], v));
    }
    dims_ += p.width;
    params_.push_back(std::move(p));
  }
}

double SearchSpace::to_unit(const Param& p, double v) const {
  if (p.min == p.max) return 0.5;
  switch (p.scale) {
    case ParameterSpec::LOG: return (std::log(v) - std::log(p.min)) / (std::log(p.max) - std::log(p.min));
    case ParameterSpec::REVERSE_LOG:
      // Dense near max: the log of the distance to max (shifted by min so it stays positive).
      return (std::log(p.max) - std::log(p.max + p.min - v)) / (std::log(p.max) - std::log(p.min));
    default: return (v - p.min) / (p.max - p.min);
  }
}

double SearchSpace::from_unit(const Param& p, double u) const {
  u = std::clamp(u, 0.0, 1.0);
  double v;
  switch (p.scale) {
    case ParameterSpec::LOG: v = std::exp(std::log(p.min) + u * (std::log(p.max) - std::log(p.min))); break;
    case ParameterSpec::REVERSE_LOG:
      v = p.max + p.min - std::exp(std::log(p.max) - u * (std::log(p.max) - std::log(p.min)));
      break;
    default: v = p.min + u * (p.max - p.min);
  }
  return std::clamp(v, p.min, p.max);  // exp/log round-off must not leave the range
}

bool SearchSpace::active(const Param& p, const Assignment& a) const {
  if (p.parent < 0) return true;
  auto it = a.find(params_[p.parent].name);
  if (it == a.end()) return false;
  return std::find(p.parent_values.begin(), p.parent_values.end(), it->second) != p.parent_values.end();
}

std::vector<double> SearchSpace::encode(const Assignment& a) const {
  std::vector<double> x(dims_, 0.0);
  for (const Param& p : params_) {
    auto it = a.find(p.name);
    if (!active(p, a)) {
      if (p.type != ParameterSpec::CATEGORICAL) x[p.offset] = kInactiveNumeric;
      continue;
    }
    if (it == a.end()) fail("parameters lack the active parameter '", p.name, "'");
    const ParamValue& v = it->second;
    if (p.type == ParameterSpec::CATEGORICAL) {
      auto c = std::find(p.categories.begin(), p.categories.end(), v.category);
      if (!v.categorical || c == p.categories.end()) fail("parameter '", p.name, "': '", format_value(v), "' is not one of its values");
      x[p.offset + (c - p.categories.begin())] = 1.0;
    } else {
      if (v.categorical) fail("parameter '", p.name, "': '", v.category, "' is not a number");
      x[p.offset] = to_unit(p, v.number);
    }
  }
  return x;
}

Assignment SearchSpace::decode(std::span<const double> x) const {
  KILN_CHECK(x.size() == dims_);
  Assignment a;
  for (const Param& p : params_) {
    if (!active(p, a)) continue;
    if (p.type == ParameterSpec::CATEGORICAL) {
      size_t best = 0;
      for (size_t k = 1; k < p.width; ++k)
        if (x[p.offset + k] > x[p.offset + best]) best = k;
      a[p.name] = ParamValue::of(p.categories[best]);
      continue;
    }
    double u = std::clamp(x[p.offset], 0.0, 1.0);
    if (p.type == ParameterSpec::DISCRETE) {
      // Nearest on the parameter's scale, which is what the GP sees.
      size_t best = 0;
      for (size_t k = 1; k < p.values.size(); ++k)
        if (std::fabs(to_unit(p, p.values[k]) - u) < std::fabs(to_unit(p, p.values[best]) - u)) best = k;
      a[p.name] = ParamValue::of(p.values[best]);
    } else if (p.type == ParameterSpec::INTEGER) {
      double v = from_unit(p, u), lo = std::floor(v), hi = std::ceil(v);
      // Round on the unit scale so that log-scaled integers split their cells evenly there.
      double pick = std::fabs(to_unit(p, lo) - u) <= std::fabs(to_unit(p, hi) - u) ? lo : hi;
      a[p.name] = ParamValue::of(std::clamp(pick, p.min, p.max));
    } else {
      a[p.name] = ParamValue::of(round_significant(from_unit(p, u), p));
    }
  }
  return a;
}

void SearchSpace::canonicalize(std::span<double> x) const {
  std::vector<double> e = encode(decode(x));
  std::copy(e.begin(), e.end(), x.begin());
}

size_t SearchSpace::choice_count(size_t param) const {
  const Param& p = params_[param];
  if (!p.enumerated) return 0;
  return p.type == ParameterSpec::CATEGORICAL ? p.categories.size() : p.values.size();
}

void SearchSpace::set_choice(std::span<double> x, size_t param, size_t k) const {
  const Param& p = params_[param];
  if (p.type == ParameterSpec::CATEGORICAL) {
    for (size_t j = 0; j < p.width; ++j) x[p.offset + j] = j == k ? 1.0 : 0.0;
  } else {
    x[p.offset] = to_unit(p, p.values[k]);
  }
}

std::vector<size_t> SearchSpace::continuous_dimensions() const {
  std::vector<size_t> dims;
  for (const Param& p : params_)
    if (!p.enumerated) dims.push_back(p.offset);
  return dims;
}

bool SearchSpace::for_each_assignment(uint64_t limit, const std::function<void(const Assignment&)>& visit) const {
  for (const Param& p : params_)
    if (!p.enumerated) return false;
  // Conditionals make a product formula wrong, so walk the tree; the limit keeps it cheap.
  uint64_t count = 0;
  std::function<bool(size_t, Assignment&)> walk = [&](size_t i, Assignment& a) {
    if (i == params_.size()) {
      if (++count > limit) return false;
      visit(a);
      return true;
    }
    const Param& p = params_[i];
    if (!active(p, a)) return walk(i + 1, a);
    for (size_t k = 0; k < choice_count(i); ++k) {
      a[p.name] = p.type == ParameterSpec::CATEGORICAL ? ParamValue::of(p.categories[k]) : ParamValue::of(p.values[k]);
      if (!walk(i + 1, a)) return false;
    }
    a.erase(p.name);
    return true;
  };
  Assignment a;
  return walk(0, a);
}

std::optional<uint64_t> SearchSpace::cardinality(uint64_t limit) const {
  uint64_t count = 0;
  if (!for_each_assignment(limit, [&](const Assignment&) { ++count; })) return std::nullopt;
  return count;
}

std::vector<Assignment> SearchSpace::enumerate(uint64_t limit) const {
  std::vector<Assignment> out;
  KILN_CHECK(for_each_assignment(limit, [&](const Assignment& a) { out.push_back(a); }), "space not enumerable");
  return out;
}

}  // namespace kiln::tuning
