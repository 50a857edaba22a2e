#include "transform/distances.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "core/error.h"

namespace kiln::transform {
namespace {

// Position of a bucket in value order: negatives by descending index, then zero, then positives.
std::tuple<int, int64_t> order_key(const QuantileSketch::Bucket& bucket) {
  return {bucket.sign, static_cast<int64_t>(bucket.sign) * bucket.index};
}

// p log2(2 p / (p + q)) with 0 log 0 = 0: one side's share of a bin's JS term.
double js_term(double p, double q) { return p > 0 ? p * std::log2(2 * p / (p + q)) : 0.0; }

}  // namespace

double l_infinity_distance(const VocabularyCounter& a, const VocabularyCounter& b) {
  if (a.total() == 0 || b.total() == 0) return a.total() == b.total() ? 0.0 : 1.0;
  const auto total_a = static_cast<double>(a.total());
  const auto total_b = static_cast<double>(b.total());
  double distance = 0;  // max is order-independent, so the walk order does not matter
  a.for_each([&](std::string_view value, int64_t count) {
    distance = std::max(distance, std::fabs(static_cast<double>(count) / total_a -
                                            static_cast<double>(b.count(value)) / total_b));
  });
  b.for_each([&](std::string_view value, int64_t count) {
    if (a.count(value) == 0) distance = std::max(distance, static_cast<double>(count) / total_b);
  });
  return distance;
}

CategoryShares category_shares(const CategoricalStats& baseline, const CategoricalStats& other) {
  CategoryShares s;
  s.baseline_total = baseline.count();
  s.other_total = other.count();
  const int kept = baseline.vocabulary_size();
  std::vector<int64_t> counts_a(baseline.frequencies().begin(), baseline.frequencies().end());
  counts_a.resize(static_cast<size_t>(kept));
  counts_a.push_back(baseline.oov_count());
  std::unordered_map<std::string_view, size_t> slot;
  for (int k = 0; k < kept; ++k) slot.emplace(baseline.vocabulary(k), static_cast<size_t>(k));
  std::vector<int64_t> counts_b(counts_a.size(), 0);
  int64_t assigned = 0;
  for (int k = 0; k < other.vocabulary_size() && k < other.frequencies_size(); ++k) {
    auto it = slot.find(other.vocabulary(k));
    if (it == slot.end()) continue;
    counts_b[it->second] = other.frequencies(k);
    assigned += other.frequencies(k);
  }
  counts_b.back() = std::max<int64_t>(other.count() - assigned, 0);
  auto shares = [](const std::vector<int64_t>& counts, int64_t total) {
    std::vector<double> out(counts.size(), 0.0);
    if (total > 0)
      for (size_t k = 0; k < counts.size(); ++k) out[k] = static_cast<double>(counts[k]) / static_cast<double>(total);
    return out;
  };
  s.baseline = shares(counts_a, s.baseline_total);
  s.other = shares(counts_b, s.other_total);
  return s;
}

double l_infinity_distance(const CategoryShares& shares) {
  if (shares.baseline_total == 0 || shares.other_total == 0)
    return shares.baseline_total == shares.other_total ? 0.0 : 1.0;
  double distance = 0;
  for (size_t k = 0; k < shares.baseline.size(); ++k)
    distance = std::max(distance, std::fabs(shares.baseline[k] - shares.other[k]));
  return distance;
}

double jensen_shannon_divergence(const QuantileSketch& a, const QuantileSketch& b, int max_bins) {
  if (a.alpha() != b.alpha())
    fail("Jensen-Shannon divergence of sketches with different alpha (", a.alpha(), " and ", b.alpha(), ")");
  if (max_bins < 0) fail("Jensen-Shannon divergence: max_bins ", max_bins, " must be >= 0");
  if (a.count() == 0 || b.count() == 0) return a.count() == b.count() ? 0.0 : 1.0;
  const std::vector<QuantileSketch::Bucket> buckets_a = a.buckets(), buckets_b = b.buckets();
  const auto total_a = static_cast<double>(a.count());
  const auto total_b = static_cast<double>(b.count());
  const double min_bin_mass = max_bins > 0 ? 1.0 / max_bins : 0.0;

  double divergence = 0;
  int64_t bin_a = 0, bin_b = 0;  // counts of the bin being filled
  auto close_bin = [&] {
    const double p = static_cast<double>(bin_a) / total_a, q = static_cast<double>(bin_b) / total_b;
    divergence += 0.5 * (js_term(p, q) + js_term(q, p));
    bin_a = bin_b = 0;
  };
  // Merge-walk the two sorted bucket lists; a bucket present on one side only counts 0 on the other.
  size_t i = 0, j = 0;
  while (i < buckets_a.size() || j < buckets_b.size()) {
    const bool take_a = j == buckets_b.size() ||
                        (i < buckets_a.size() && order_key(buckets_a[i]) <= order_key(buckets_b[j]));
    const bool take_b = i == buckets_a.size() ||
                        (j < buckets_b.size() && order_key(buckets_b[j]) <= order_key(buckets_a[i]));
    if (take_a) bin_a += buckets_a[i++].count;
    if (take_b) bin_b += buckets_b[j++].count;
    // Integer counts: the bin's mixture mass is exact up to the one division.
    if (0.5 * (static_cast<double>(bin_a) / total_a + static_cast<double>(bin_b) / total_b) >= min_bin_mass)
      close_bin();
  }
  if (bin_a > 0 || bin_b > 0) close_bin();
  return std::clamp(divergence, 0.0, 1.0);
}

}  // namespace kiln::transform
