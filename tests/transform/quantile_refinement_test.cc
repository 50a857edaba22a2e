#include "transform/quantile_refinement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "proto/analysis_partial.pb.h"
#include "proto/analyzer_state.pb.h"
#include "tests/transform/partition.h"
#include "transform/distinct_values.h"

namespace kiln::transform {
namespace {

// Distinct values counted in parts and merged in a random tree, like threads and ranks do.
DistinctValues distinct_in_parts(const std::vector<double>& values, size_t parts, std::mt19937_64& rng, int64_t limit) {
  return testing::accumulate_in_parts(
      values, parts, rng, [&] { return DistinctValues(limit); },
      [](DistinctValues& d, double x) { d.add_all({&x, 1}); });
}

TEST(DistinctValues, ExactCountsAndCanonicalState) {
  std::mt19937_64 rng(3);
  std::vector<double> values;
  for (int i = 0; i < 5000; ++i) values.push_back(1970 + i % 13);
  values.push_back(-0.0);
  values.push_back(0.0);
  const DistinctValues d = distinct_in_parts(values, 7, rng, 100);
  ASSERT_FALSE(d.overflowed());
  const auto sorted = d.sorted();
  ASSERT_EQ(sorted.size(), 14u);
  EXPECT_EQ(sorted[0], (std::pair<double, int64_t>{0.0, 2}));  // -0.0 counts as 0.0
  for (int k = 0; k < 13; ++k) EXPECT_EQ(sorted[static_cast<size_t>(k) + 1].first, 1970 + k);
  DistinctValuesState a, b;
  d.to_proto(&a);
  distinct_in_parts(values, 3, rng, 100).to_proto(&b);
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  DistinctValuesState round_trip;
  DistinctValues::from_proto(a).to_proto(&round_trip);
  EXPECT_EQ(round_trip.SerializeAsString(), a.SerializeAsString());
}

TEST(DistinctValues, OverflowDependsOnlyOnTheUnion) {
  std::mt19937_64 rng(4);
  std::vector<double> values;
  for (int i = 0; i < 3000; ++i) values.push_back(i % 101);  // 101 distinct
  for (size_t parts : {1, 2, 5, 40}) {
    EXPECT_FALSE(distinct_in_parts(values, parts, rng, 101).overflowed()) << parts;
    EXPECT_TRUE(distinct_in_parts(values, parts, rng, 100).overflowed()) << parts;
  }
  DistinctValuesState bad;
  bad.set_limit(10);
  bad.add_values(2);
  bad.add_values(1);
  bad.add_counts(1);
  bad.add_counts(1);
  EXPECT_THROW(DistinctValues::from_proto(bad), Error);
}

TEST(OrderKey, PreservesOrderAndRoundTrips) {
  const std::vector<double> v{-std::numeric_limits<double>::max(), -1e300, -1.5, -std::numeric_limits<double>::denorm_min(),
                              0.0, std::numeric_limits<double>::denorm_min(), 1e-300, 1, 1970, 1.7e9,
                              std::numeric_limits<double>::max()};
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(from_order_key(order_key(v[i])), v[i]);
    if (i > 0) {
      EXPECT_LT(order_key(v[i - 1]), order_key(v[i]));
    }
  }
  EXPECT_EQ(order_key(-0.0), order_key(0.0));
}

struct Answer {
  std::vector<double> values;
  std::vector<int64_t> errors;
  int passes = 0;
};

// The whole method on in-memory values: pass one accumulated in `parts` random parts, then
// refinement passes whose histograms are accumulated in parts too (as threads and ranks would).
Answer quantiles(const std::vector<double>& values, const std::vector<int64_t>& ranks, size_t parts, std::mt19937_64& rng,
                 int64_t limit = DistinctValues::kDefaultLimit) {
  QuantileSketch sketch;
  for (double x : values) sketch.add(x);
  const DistinctValues distinct = distinct_in_parts(values, parts, rng, limit);
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  const auto n = static_cast<int64_t>(values.size());
  RankQuantiles q(n, *lo, *hi, RankQuantiles::allowed_error(n), distinct, sketch, ranks,
                  std::vector<bool>(ranks.size(), true));
  while (!q.done()) {
    const std::vector<KeyInterval> intervals = q.intervals();
    RefinementHistogram h = testing::accumulate_in_parts(
        values, parts, rng, [&] { return RefinementHistogram(intervals); },
        [](RefinementHistogram& part, double x) { part.add_all({&x, 1}); });
    // Through the state, as MPI ranks exchange it.
    RefinementHistogramState state;
    h.to_proto(&state);
    q.refine(RefinementHistogram::from_proto(state));
  }
  Answer a;
  a.passes = q.passes();
  for (const RankQuantiles::Target& t : q.targets()) {
    a.values.push_back(t.value);
    a.errors.push_back(t.rank_error);
  }
  return a;
}

// The rank error of v for rank r: the distance from r to v's ranks in the sorted values (the
// same check the numpy test in tests/e2e makes with searchsorted).
int64_t rank_error(const std::vector<double>& sorted, double v, int64_t r) {
  const auto first = std::lower_bound(sorted.begin(), sorted.end(), v) - sorted.begin();
  const auto last = std::upper_bound(sorted.begin(), sorted.end(), v) - sorted.begin() - 1;
  if (r < first) return first - r;
  if (r > last) return r - last;
  return 0;
}

void expect_within_bound(const char* name, const std::vector<double>& values, int buckets, std::mt19937_64& rng,
                         bool expect_exact) {
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  const auto n = static_cast<int64_t>(values.size());
  std::vector<int64_t> ranks{(n - 1) / 2};
  for (int k = 1; k < buckets; ++k) ranks.push_back(k * (n - 1) / buckets);
  const Answer a = quantiles(values, ranks, 5, rng);
  for (size_t k = 0; k < ranks.size(); ++k) {
    const int64_t error = rank_error(sorted, a.values[k], ranks[k]);
    EXPECT_LE(error, a.errors[k]) << name << " rank " << ranks[k] << " (the reported bound must hold)";
    EXPECT_LE(error, n / 1000) << name << " rank " << ranks[k] << " value " << a.values[k] << " truth " << sorted[static_cast<size_t>(ranks[k])];
    if (expect_exact) {
      EXPECT_EQ(a.values[k], sorted[static_cast<size_t>(ranks[k])]) << name << " rank " << ranks[k];
    }
    EXPECT_GE(a.values[k], sorted.front()) << name;
    EXPECT_LE(a.values[k], sorted.back()) << name;
  }
  // The same answers for another split of the rows.
  const Answer b = quantiles(values, ranks, 17, rng);
  EXPECT_EQ(a.values, b.values) << name;
  EXPECT_EQ(a.errors, b.errors) << name;
}

TEST(RankQuantiles, OffsetNarrowColumnsWithinRankError) {
  std::mt19937_64 rng(11);
  const size_t n = 100000;
  std::vector<double> years, fractional_years, timestamps, latitudes, longitudes;
  std::uniform_int_distribution<int> year(1970, 1982);
  std::uniform_real_distribution<double> unit(0, 1);
  std::normal_distribution<double> normal(0, 1);
  for (size_t i = 0; i < n; ++i) {
    years.push_back(year(rng));
    fractional_years.push_back(1970 + 12 * unit(rng));
    timestamps.push_back(std::floor(1.7e9 + 3.15e7 * unit(rng)));  // a year of Unix seconds
    latitudes.push_back(40.7 + 0.05 * normal(rng));
    longitudes.push_back(-74.0 + 0.05 * normal(rng));
  }
  expect_within_bound("years", years, 4, rng, true);  // 13 distinct values: exact
  expect_within_bound("fractional years", fractional_years, 10, rng, false);
  expect_within_bound("timestamps", timestamps, 10, rng, false);
  expect_within_bound("latitudes", latitudes, 10, rng, false);
  expect_within_bound("longitudes", longitudes, 10, rng, false);
}

TEST(RankQuantiles, HeavyTailsDuplicatesAndConstants) {
  std::mt19937_64 rng(12);
  const size_t n = 50000;
  std::vector<double> cauchy, lognormal, duplicates, constant(n, 1.7e9), signed_zeros;
  std::cauchy_distribution<double> c(0, 1);
  std::lognormal_distribution<double> l(0, 5);
  std::normal_distribution<double> normal(0, 1);
  for (size_t i = 0; i < n; ++i) {
    cauchy.push_back(c(rng));
    lognormal.push_back(l(rng));
    duplicates.push_back(i % 10 < 7 ? 42.5 : 42.5 + normal(rng));  // 70% one value, the rest continuous
    signed_zeros.push_back(i % 3 == 0 ? 0.0 : normal(rng));
  }
  expect_within_bound("cauchy", cauchy, 10, rng, false);
  expect_within_bound("lognormal", lognormal, 10, rng, false);
  expect_within_bound("duplicates", duplicates, 4, rng, false);
  expect_within_bound("constant", constant, 4, rng, true);
  expect_within_bound("signed with zeros", signed_zeros, 10, rng, false);
}

TEST(RankQuantiles, FewRowsAreExact) {
  std::mt19937_64 rng(13);
  std::vector<double> values;
  std::normal_distribution<double> normal(1e9, 1);
  for (int i = 0; i < 999; ++i) values.push_back(normal(rng));
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  // A distinct-value limit below the row count forces the sketch and refinement path.
  const Answer a = quantiles(values, {0, 100, 499, 998}, 4, rng, 10);
  EXPECT_EQ(a.values, (std::vector<double>{sorted[0], sorted[100], sorted[499], sorted[998]}));
  EXPECT_GE(a.passes, 1);
}

TEST(RankQuantiles, ModelYearMedianIsExact) {
  // The reported bug: model years 1970-1982 got the median 1970 and boundaries outside the data.
  std::mt19937_64 rng(14);
  std::vector<double> years;
  for (int y = 1970; y <= 1982; ++y)
    for (int k = 0; k < 30; ++k) years.push_back(y);
  const Answer a = quantiles(years, {(390 - 1) / 2, 97, 194, 291}, 3, rng);
  EXPECT_EQ(a.values, (std::vector<double>{1976, 1973, 1976, 1979}));
}

}  // namespace
}  // namespace kiln::transform
