#include "transform/vocabulary_counter.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "proto/analyzer_state.pb.h"
#include "tests/transform/partition.h"

namespace kiln::transform {
namespace {

using Top = std::vector<std::pair<std::string, int64_t>>;

VocabularyCounter counter_of(const std::vector<std::string>& values) {
  VocabularyCounter counter;
  for (const std::string& v : values) counter.add(v);
  return counter;
}

std::string serialized(const VocabularyCounter& counter) {
  VocabularyState state;
  counter.to_proto(&state);
  return state.SerializeAsString();
}

TEST(VocabularyCounter, CountsTotalsDistinct) {
  VocabularyCounter counter = counter_of({"b", "a", "b", "", std::string("x\0y", 3)});
  counter.add("a", 5);
  EXPECT_EQ(counter.count("a"), 6);
  EXPECT_EQ(counter.count("b"), 2);
  EXPECT_EQ(counter.count(""), 1);
  EXPECT_EQ(counter.count(std::string("x\0y", 3)), 1);
  EXPECT_EQ(counter.count("x"), 0);
  EXPECT_EQ(counter.count("c"), 0);
  EXPECT_EQ(counter.total(), 10);
  EXPECT_EQ(counter.distinct(), 4);
  EXPECT_EQ(VocabularyCounter().count("a"), 0);
}

TEST(VocabularyCounter, TopOrdersByCountThenBytes) {
  const VocabularyCounter counter =
      counter_of({"b", "b", "b", "a", "a", "a", "c", "c", "c", "c", "c", "e", "d", "\xff", "z"});
  EXPECT_EQ(counter.top(0, 1), (Top{{"c", 5}, {"a", 3}, {"b", 3}, {"d", 1}, {"e", 1}, {"z", 1}, {"\xff", 1}}));
  EXPECT_EQ(counter.top(2, 1), (Top{{"c", 5}, {"a", 3}}));
  EXPECT_EQ(counter.top(3, 0), (Top{{"c", 5}, {"a", 3}, {"b", 3}}));
  EXPECT_EQ(counter.top(0, 3), (Top{{"c", 5}, {"a", 3}, {"b", 3}}));
  EXPECT_EQ(counter.top(1, 4), (Top{{"c", 5}}));
  EXPECT_EQ(counter.top(0, 6), Top{});
  EXPECT_EQ(counter.top(100, 1).size(), 7u);
  EXPECT_THROW(counter.top(-1, 1), Error);
}

std::vector<std::string> zipf_values(std::mt19937_64& rng, size_t n) {
  std::vector<std::string> values;
  std::uniform_real_distribution<double> u(0, 1);
  for (size_t i = 0; i < n; ++i) {
    const auto rank = static_cast<int64_t>(std::exp(u(rng) * std::log(20000.0)));  // long tail
    values.push_back((rank % 3 == 0 ? "a-long-category-name-" : "v") + std::to_string(rank));
  }
  return values;
}

TEST(VocabularyCounter, AnyPartitionGivesTheSameCounts) {
  std::mt19937_64 rng(2);
  const std::vector<std::string> values = zipf_values(rng, 20000);
  const VocabularyCounter whole = counter_of(values);
  auto make = [] { return VocabularyCounter(); };
  auto add = [](VocabularyCounter& c, const std::string& v) { c.add(v); };
  for (const VocabularyCounter& merged :
       {testing::accumulate_in_parts(values, 7, rng, make, add), testing::accumulate_in_parts(values, 200, rng, make, add),
        testing::accumulate_each_apart(values, rng, make, add)}) {
    EXPECT_TRUE(merged == whole);
    EXPECT_EQ(merged.total(), whole.total());
    EXPECT_EQ(merged.distinct(), whole.distinct());
    EXPECT_EQ(serialized(merged), serialized(whole));
    EXPECT_EQ(merged.top(50, 2), whole.top(50, 2));
  }
}

TEST(VocabularyCounter, ManyDistinctValues) {
  VocabularyCounter counter;
  for (int round = 0; round < 3; ++round)
    for (int i = 0; i < 100000; ++i) counter.add(std::to_string(i));
  EXPECT_EQ(counter.distinct(), 100000);
  EXPECT_EQ(counter.total(), 300000);
  for (int i = 0; i < 100000; i += 997) EXPECT_EQ(counter.count(std::to_string(i)), 3);
  EXPECT_EQ(counter.count("100000"), 0);
  const Top top = counter.top(3, 1);
  EXPECT_EQ(top, (Top{{"0", 3}, {"1", 3}, {"10", 3}}));
}

// Values of every length around the 7-byte inline limit, with NUL and high bytes, counted one by
// one and in batches: the same counts, none confused with another.
TEST(VocabularyCounter, ShortAndLongValuesAreDistinct) {
  std::vector<std::string> values = {std::string(""), std::string("\0", 1), std::string("a"), std::string("a\0", 2),
                                     std::string("\0a", 2), std::string("abcdefg"), std::string("abcdefg\0", 8),
                                     std::string("abcdefgh"), std::string("\xff\xff\xff\xff\xff\xff\xff"),
                                     std::string("\xff\xff\xff\xff\xff\xff\xff\xff")};
  for (int length = 0; length <= 17; ++length)
    for (char c : {'x', '\0', '\x80'}) values.push_back(std::string(static_cast<size_t>(length), c));
  std::vector<std::string> all;
  for (size_t i = 0; i < values.size(); ++i)
    for (size_t k = 0; k <= i; ++k) all.push_back(values[i]);  // value i occurs i + 1 times
  VocabularyCounter one_by_one = counter_of(all);
  std::vector<std::string_view> views(all.begin(), all.end());
  VocabularyCounter batch;
  batch.add_all(views);
  for (const VocabularyCounter& c : {one_by_one, batch}) {
    std::map<std::string, int64_t> expected;
    for (const std::string& v : all) ++expected[v];
    EXPECT_EQ(c.distinct(), static_cast<int64_t>(expected.size()));
    EXPECT_EQ(c.total(), static_cast<int64_t>(all.size()));
    for (const auto& [v, n] : expected) EXPECT_EQ(c.count(v), n) << v.size();
    int64_t seen = 0;
    c.for_each([&](std::string_view v, int64_t n) {
      EXPECT_EQ(expected.at(std::string(v)), n);
      ++seen;
    });
    EXPECT_EQ(seen, static_cast<int64_t>(expected.size()));
  }
  EXPECT_TRUE(batch == one_by_one);
  EXPECT_EQ(serialized(batch), serialized(one_by_one));
  EXPECT_EQ(batch.top(0, 1), one_by_one.top(0, 1));
}

TEST(VocabularyCounter, AddAllEqualsAdd) {
  std::mt19937_64 rng(4);
  const std::vector<std::string> values = zipf_values(rng, 50000);
  const std::vector<std::string_view> views(values.begin(), values.end());
  VocabularyCounter batch;
  batch.add_all(std::span(views).first(1000));
  batch.add_all(std::span(views).subspan(1000));
  const VocabularyCounter one_by_one = counter_of(values);
  EXPECT_TRUE(batch == one_by_one);
  EXPECT_EQ(serialized(batch), serialized(one_by_one));
}

TEST(VocabularyCounter, SelfMergeDoubles) {
  VocabularyCounter counter = counter_of({"a", "b", "a"});
  counter.merge(counter);
  EXPECT_EQ(counter.count("a"), 4);
  EXPECT_EQ(counter.total(), 6);
}

TEST(VocabularyCounter, ProtoIsSortedAndRoundTrips) {
  std::mt19937_64 rng(12);
  const std::vector<std::string> values = zipf_values(rng, 3000);
  VocabularyCounter a = counter_of({values.begin(), values.begin() + 1000});
  const VocabularyCounter b = counter_of({values.begin() + 1000, values.end()});
  VocabularyState state;
  a.to_proto(&state);
  for (int i = 1; i < state.values_size(); ++i) EXPECT_LT(state.values(i - 1), state.values(i));
  VocabularyCounter restored = VocabularyCounter::from_proto(state);
  EXPECT_TRUE(restored == a);
  restored.merge(b);
  a.merge(b);
  EXPECT_EQ(serialized(restored), serialized(a));
}

TEST(VocabularyCounter, MalformedStatesAreErrors) {
  VocabularyState state;
  state.add_values("b");
  state.add_values("a");
  state.add_counts(1);
  EXPECT_THROW(VocabularyCounter::from_proto(state), Error);  // sizes differ
  state.add_counts(1);
  EXPECT_THROW(VocabularyCounter::from_proto(state), Error);  // not sorted
  state.set_values(0, "a");
  EXPECT_THROW(VocabularyCounter::from_proto(state), Error);  // duplicate
  state.set_values(1, "b");
  state.set_counts(1, 0);
  EXPECT_THROW(VocabularyCounter::from_proto(state), Error);  // zero count
  state.set_counts(1, 2);
  EXPECT_EQ(VocabularyCounter::from_proto(state).count("b"), 2);
}

}  // namespace
}  // namespace kiln::transform
