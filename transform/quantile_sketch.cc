#include "transform/quantile_sketch.h"

#include <algorithm>

#include "core/error.h"
#include "proto/transform_state.pb.h"

namespace kiln::transform {
namespace {

constexpr int64_t kMaxCount = int64_t{1} << 62;  // keeps every total of a valid state in int64

// Walks the buckets in ascending order of value and returns the bucket value at each 0-based
// rank of `ranks` (ascending, each < the total count).
template <typename Value>
std::vector<double> values_at_ranks(const std::vector<QuantileSketch::Bucket>& buckets,
                                    const std::vector<int64_t>& ranks, Value&& value) {
  std::vector<double> values;
  values.reserve(ranks.size());
  int64_t cumulative = 0;
  size_t next = 0;
  for (const QuantileSketch::Bucket& bucket : buckets) {
    cumulative += bucket.count;
    for (; next < ranks.size() && ranks[next] < cumulative; ++next) values.push_back(value(bucket));
    if (next == ranks.size()) break;
  }
  return values;
}

}  // namespace

QuantileSketch::QuantileSketch(double alpha) : alpha_(alpha) {
  if (!(alpha >= 1e-4 && alpha <= 0.5)) fail("quantile sketch: alpha ", alpha, " is outside [1e-4, 0.5]");
  gamma_ = (1 + alpha) / (1 - alpha);
  log_gamma_ = deterministic_log(gamma_);  // not std::log: the bucket indices depend on it
  inverse_log_gamma_ = 1 / log_gamma_;
  index_ = SketchIndex(inverse_log_gamma_);
}

void QuantileSketch::reject_non_finite(double x) {
  detail::check_failed(__FILE__, __LINE__, "std::isfinite(x)",
                       str_cat("QuantileSketch::add: non-finite value ", x, " (the caller filters these)"));
}

void QuantileSketch::Store::grow_and_add(int32_t index, int64_t n) {
  const auto size = static_cast<int64_t>(counts_.size());
  const bool empty = counts_.empty();
  int64_t low = empty ? index : std::min<int64_t>(offset_, index);
  int64_t high = empty ? index + 1 : std::max<int64_t>(offset_ + size, index + 1);
  // Slack on the side that grew makes a run of ascending (or descending) indices amortised O(1).
  const int64_t slack = std::max<int64_t>(32, (high - low) / 2);
  if (empty || index < offset_) low -= slack;
  if (empty || index >= offset_ + size) high += slack;
  std::vector<int64_t> grown(static_cast<size_t>(high - low), 0);
  std::copy(counts_.begin(), counts_.end(), grown.begin() + (empty ? 0 : offset_ - low));
  counts_.swap(grown);
  offset_ = static_cast<int32_t>(low);
  counts_[static_cast<size_t>(index - offset_)] += n;
}

void QuantileSketch::Store::increment_each(const int32_t* indices, size_t n) {
  int64_t* counts = counts_.data();
  auto size = static_cast<uint32_t>(counts_.size());
  for (size_t k = 0; k < n; ++k) {
    const auto slot = static_cast<uint32_t>(indices[k] - offset_);
    if (slot < size) [[likely]] {
      ++counts[slot];
      continue;
    }
    grow_and_add(indices[k], 1);
    counts = counts_.data();
    size = static_cast<uint32_t>(counts_.size());
  }
}

void QuantileSketch::Store::merge(const Store& other) {
  other.for_each([this](int32_t index, int64_t count) { increment(index, count); });
}

bool QuantileSketch::Store::operator==(const Store& other) const {
  std::vector<std::pair<int32_t, int64_t>> mine, theirs;
  for_each([&](int32_t index, int64_t count) { mine.emplace_back(index, count); });
  other.for_each([&](int32_t index, int64_t count) { theirs.emplace_back(index, count); });
  return mine == theirs;
}

void QuantileSketch::add_all(std::span<const double> values) {
  // Two passes per group: computing indices has no dependency between values and pipelines well;
  // the increments then see their addresses early.
  constexpr size_t kGroup = 256;
  int32_t index[kGroup];
  uint8_t sign[kGroup];
  int64_t zeros = 0;
  for (size_t begin = 0; begin < values.size(); begin += kGroup) {
    const size_t end = std::min(values.size(), begin + kGroup);
    size_t n = 0;
    for (size_t i = begin; i < end; ++i) {
#if defined(__AVX2__) && defined(__FMA__)
      // Four indices at once where they are clear (almost always), else these four one by one.
      for (; i + 4 <= end && index_.four(values.data() + i, index + n); i += 4, n += 4)
        for (size_t k = 0; k < 4; ++k) sign[n + k] = std::signbit(values[i + k]);
      if (i == end) break;
#endif
      const double magnitude = std::fabs(values[i]);
      if (magnitude > 0 && magnitude <= std::numeric_limits<double>::max()) [[likely]] {
        index[n] = index_(magnitude);
        sign[n++] = std::signbit(values[i]);
      } else if (magnitude == 0) {
        ++zeros;
      } else {
        reject_non_finite(values[i]);
      }
    }
    // A group of one sign (most are: many columns never change sign) goes to its store in one
    // loop that keeps the store's range in registers.
    uint8_t any_negative = 0, all_negative = 1;
    for (size_t k = 0; k < n; ++k) {
      any_negative |= sign[k];
      all_negative &= sign[k];
    }
    if (any_negative == all_negative)
      stores_[any_negative].increment_each(index, n);
    else
      for (size_t k = 0; k < n; ++k) stores_[sign[k]].increment(index[k], 1);
  }
  zero_count_ += zeros;
  count_ += static_cast<int64_t>(values.size());
}

void QuantileSketch::merge(const QuantileSketch& other) {
  if (alpha_ != other.alpha_)
    fail("cannot merge quantile sketches of different accuracy (alpha ", alpha_, " and ", other.alpha_, ")");
  stores_[kPositive].merge(other.stores_[kPositive]);
  stores_[kNegative].merge(other.stores_[kNegative]);
  zero_count_ += other.zero_count_;
  count_ += other.count_;
}

double QuantileSketch::representative(int32_t index) const {
  // 2 gamma^i / (gamma + 1): the point whose relative distance to both bucket ends is alpha.
  const double value = std::exp(std::fma(index, log_gamma_, deterministic_log(2 / (gamma_ + 1))));
  return std::min(value, std::numeric_limits<double>::max());
}

std::vector<QuantileSketch::Bucket> QuantileSketch::buckets() const {
  std::vector<Bucket> result;
  stores_[kNegative].for_each([&](int32_t index, int64_t count) { result.push_back({-1, index, count}); }, true);
  if (zero_count_ > 0) result.push_back({0, 0, zero_count_});
  stores_[kPositive].for_each([&](int32_t index, int64_t count) { result.push_back({1, index, count}); });
  return result;
}

std::pair<double, double> QuantileSketch::bounds(const Bucket& bucket) const {
  if (bucket.sign == 0) return {0.0, 0.0};
  // gamma^(i-1) < |x| <= gamma^i
  const double max = std::numeric_limits<double>::max();
  const double low = std::min(std::exp((bucket.index - 1) * log_gamma_), max);
  const double high = std::min(std::exp(bucket.index * log_gamma_), max);
  return bucket.sign > 0 ? std::pair{low, high} : std::pair{-high, -low};
}

double QuantileSketch::quantile(double q) const {
  if (!(q >= 0 && q <= 1)) fail("quantile: q = ", q, " is outside [0, 1]");
  if (count_ == 0) return std::numeric_limits<double>::quiet_NaN();
  // In long double the product is exact for any q and n < 2^11, and near-exact beyond.
  const auto rank = static_cast<int64_t>(std::floor(static_cast<long double>(q) * (count_ - 1)));
  return values_at_ranks(buckets(), {rank},
                         [this](const Bucket& b) { return b.sign * representative(b.index); })[0];
}

bool QuantileSketch::operator==(const QuantileSketch& other) const {
  return alpha_ == other.alpha_ && zero_count_ == other.zero_count_ && count_ == other.count_ &&
         stores_[kPositive] == other.stores_[kPositive] && stores_[kNegative] == other.stores_[kNegative];
}

void QuantileSketch::to_proto(QuantileSketchState* state) const {
  state->Clear();
  state->set_alpha(alpha_);
  stores_[kPositive].for_each([state](int32_t index, int64_t count) {
    state->add_positive_index(index);
    state->add_positive_count(count);
  });
  stores_[kNegative].for_each([state](int32_t index, int64_t count) {
    state->add_negative_index(index);
    state->add_negative_count(count);
  });
  state->set_zero_count(zero_count_);
}

QuantileSketch QuantileSketch::from_proto(const QuantileSketchState& state) {
  if (!state.has_alpha()) fail("QuantileSketchState: no alpha");
  QuantileSketch sketch(state.alpha());
  // Indices outside the range of finite doubles would only make the dense store huge.
  const int64_t lowest = sketch.index(std::numeric_limits<double>::denorm_min()) - 1;
  const int64_t highest = sketch.index(std::numeric_limits<double>::max()) + 1;
  if (state.zero_count() < 0 || state.zero_count() > kMaxCount) fail("QuantileSketchState: bad zero count");
  int64_t total = state.zero_count();
  auto load = [&](const auto& indices, const auto& counts, Store& store, const char* side) {
    if (indices.size() != counts.size())
      fail("QuantileSketchState: ", indices.size(), " ", side, " indices but ", counts.size(), " counts");
    for (int i = 0; i < indices.size(); ++i) {
      if (i > 0 && indices[i] <= indices[i - 1])
        fail("QuantileSketchState: ", side, " indices are not strictly increasing");
      if (indices[i] < lowest || indices[i] > highest)
        fail("QuantileSketchState: ", side, " index ", indices[i], " is outside [", lowest, ", ", highest, "]");
      if (counts[i] <= 0 || counts[i] > kMaxCount - total)
        fail("QuantileSketchState: bad ", side, " count ", counts[i]);
      total += counts[i];
      store.increment(indices[i], counts[i]);
    }
  };
  load(state.positive_index(), state.positive_count(), sketch.stores_[kPositive], "positive");
  load(state.negative_index(), state.negative_count(), sketch.stores_[kNegative], "negative");
  sketch.zero_count_ = state.zero_count();
  sketch.count_ = total;
  return sketch;
}

}  // namespace kiln::transform
